"""Schema migrations of the sql backend, with the Alembic scripts shipped in ``migrations/``.

    >>> from sqlalchemy import create_engine
    >>> engine = create_engine("sqlite://")
    >>> with engine.begin() as conn:
    ...     current_revision(conn) is None, upgrade(conn), current_revision(conn) == head()
    (True, None, True)

:func:`upgrade` runs inside the caller's transaction. Callers serialize concurrent
migrations (the sql backend takes a PostgreSQL advisory lock, or SQLite's write lock).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

__all__ = ["VERSION_TABLE", "current_revision", "head", "upgrade"]

VERSION_TABLE = "dspex_alembic_version"
_SCRIPTS = Path(__file__).parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    """The newest schema revision this dspex knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None when it has no dspex schema)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: Connection) -> None:
    """Apply every pending migration on ``connection`` (in its transaction)."""
    command.upgrade(_config(connection), "head")
