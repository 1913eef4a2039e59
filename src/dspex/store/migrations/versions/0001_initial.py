"""The initial schema: experiments (summary columns, compressed header), trials, tags.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(30).with_variant(sa.String(30, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dspex_experiments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("optimizer", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("hypothesis_id", ID),
        sa.Column("question_lc", sa.Text),
        sa.Column("best_score", sa.Float),
        sa.Column("sealed", sa.Boolean, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("checksum", sa.String(80)),
        sa.Column("header", sa.LargeBinary, nullable=False),
        sa.Column("trials_at", sa.Integer),
    )
    for name, columns in [
        ("program_created", ["program", "created_us", "id"]),
        ("optimizer", ["optimizer", "created_us"]),
        ("status", ["status", "created_us"]),
        ("created", ["created_us", "id"]),
        ("hypothesis", ["hypothesis_id"]),
        ("score", ["best_score", "id"]),
    ]:
        op.create_index(f"ix_dspex_exp_{name}", "dspex_experiments", columns)
    op.create_table(
        "dspex_tags",
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "tag"),
    )
    op.create_index("ix_dspex_tags_tag", "dspex_tags", ["tag", "experiment_id"])
    op.create_table(
        "dspex_trials",
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("trial_id", ID, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "trial_id"),
        sa.ForeignKeyConstraint(["experiment_id"], ["dspex_experiments.id"], ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("dspex_trials")
    op.drop_table("dspex_tags")
    op.drop_table("dspex_experiments")
