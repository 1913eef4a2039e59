"""Trial headers and summaries: each sealed trial's JSON without its events, and what the
experiment views need from its events (an ``EventSummary``), each as JSON after the
start of its SHA-256, so that an experiment page reads no event. Derived data: rows
sealed before have neither, and readers read the trial's payload instead.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dspex_trials") as batch:
        batch.add_column(sa.Column("header", sa.Text, nullable=True))
        batch.add_column(sa.Column("summary", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dspex_trials") as batch:
        batch.drop_column("summary")
        batch.drop_column("header")
