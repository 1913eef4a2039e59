"""Events in parts: where each trial's events are in its JSON (so that a page of them is
parsed alone), and the events appended to trials of running experiments.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.String(30).with_variant(sa.String(30, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("dspex_trials") as batch:
        batch.add_column(sa.Column("events", sa.Text, nullable=True))
    op.create_table(
        "dspex_event_parts",
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("trial_id", ID, nullable=False),
        sa.Column("first_seq", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "trial_id", "first_seq"),
        sa.ForeignKeyConstraint(["experiment_id"], ["dspex_experiments.id"], ondelete="CASCADE"),
    )
    if op.get_bind().dialect.name == "postgresql":  # already compressed (see 0002)
        op.execute("ALTER TABLE dspex_event_parts ALTER COLUMN payload SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("dspex_event_parts")
    with op.batch_alter_table("dspex_trials") as batch:
        batch.drop_column("events")
