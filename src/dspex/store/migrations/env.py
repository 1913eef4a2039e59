"""Alembic environment of the sql backend: runs on the connection dspex hands it.

See :mod:`dspex.store.migrate` for how it is invoked.
"""

from alembic import context

from dspex.store._sqltables import metadata

VERSION_TABLE = "dspex_alembic_version"


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


try:
    _in_alembic = context.config is not None
except AttributeError:  # imported outside Alembic, e.g. while collecting doctests
    _in_alembic = False
if _in_alembic:
    run()
