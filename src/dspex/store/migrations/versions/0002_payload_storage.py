"""PostgreSQL: store trial payloads out of line without compressing them again.

The payloads are already zstandard-compressed; PostgreSQL's default (EXTENDED) storage
tries pglz on each one first, which only costs time (archiving 85 MB of trials took
a third longer). Values already stored are not rewritten. SQLite has no such setting.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE dspex_trials ALTER COLUMN payload SET STORAGE EXTERNAL")
        op.execute("ALTER TABLE dspex_experiments ALTER COLUMN header SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE dspex_trials ALTER COLUMN payload SET STORAGE EXTENDED")
        op.execute("ALTER TABLE dspex_experiments ALTER COLUMN header SET STORAGE EXTENDED")
