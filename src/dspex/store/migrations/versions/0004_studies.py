"""Studies: one row per study (its summary and its compressed record), beside the
experiments of its cells.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME = sa.String(100).with_variant(sa.String(100, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dspex_studies",
        sa.Column("name", NAME, primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_dspex_studies_updated", "dspex_studies", ["updated_us", "name"])
    if op.get_bind().dialect.name == "postgresql":  # already compressed (see 0002)
        op.execute("ALTER TABLE dspex_studies ALTER COLUMN payload SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_index("ix_dspex_studies_updated", table_name="dspex_studies")
    op.drop_table("dspex_studies")
