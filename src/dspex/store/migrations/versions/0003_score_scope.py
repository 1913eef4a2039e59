"""Scores compare only over one example set: the scope of each experiment's best score.

Experiments archived before this revision keep a NULL scope: queries by scope (and so
min_score, max_score and order_by=score, which need one) do not find them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dspex_experiments", sa.Column("score_scope", sa.Text))
    op.create_index(
        "ix_dspex_exp_scope_score", "dspex_experiments", ["score_scope", "best_score", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_dspex_exp_scope_score", table_name="dspex_experiments")
    op.drop_column("dspex_experiments", "score_scope")
