"""The file backend's SQLite index of summaries: derived data, rebuilt from the files at will.

Readers use it without the store's lock (SQLite's WAL gives them a consistent snapshot);
writers hold the store's lock. Its layout version lives in ``PRAGMA user_version`` and
is written in the same transaction as the last row of a rebuild: an index counts as
valid only once it is complete, so a rebuild that fails or is killed is simply done
again. An index of another version, an incomplete one and a damaged one (not a
database, malformed) are rebuilt; a reader that may not change the store builds a
private copy in memory instead.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, MetaData, create_engine, delete, event, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool, StaticPool

from dspex.store._summarytable import (
    select_count,
    select_page,
    summary_from_row,
    summary_row,
    summary_tables,
    tag_rows,
)
from dspex.store.query import ExperimentSummary, Query

__all__ = ["FileIndex", "is_damage"]

INDEX_VERSION = 2  # 2: the score_scope column
_metadata = MetaData()
_experiments, _tags = summary_tables(_metadata, "")
T = TypeVar("T")


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` says the index file is damaged (as opposed to busy or unreadable)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(orig, sqlite3.DatabaseError):
        return False
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return not any(word in message for word in ("locked", "busy", "unable to open", "i/o"))
    return True


def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # the index is rebuildable
    dbapi_connection.execute("PRAGMA busy_timeout=60000")


def _on_connect_reader(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # changes nothing: not even the journal mode
    dbapi_connection.execute("PRAGMA busy_timeout=60000")


def _on_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("dspex_write")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


class FileIndex:
    """Summaries and tags of every experiment in one SQLite file (or in memory).

    ``FileIndex(path)`` is a writer's index: :meth:`open` creates the file when it is
    missing. ``FileIndex(path, read_only=True)`` only connects to an existing file
    (``mode=rw``: SQLite never creates it) and sets no pragma that writes.
    ``FileIndex(None)`` lives in memory, for a reader whose index file is unusable.
    """

    def __init__(self, path: Path | None, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._engine: Engine | None = None
        self._identity: tuple[int, int] | None = None
        # An in-memory index is one connection: threads take turns.
        self._memory_lock = threading.Lock() if path is None else None

    # -- lifecycle ----------------------------------------------------------------------

    def open(self) -> None:
        """Connect (a writer's index file is created when missing).

        A damaged file raises :class:`sqlalchemy.exc.DBAPIError` (see :func:`is_damage`).
        """
        self.close()
        engine = self._make_engine()
        try:
            engine.connect().close()
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        self._identity = None if self.path is None else _file_identity(self.path)

    @property
    def valid(self) -> bool:
        """Whether the index is complete and of this layout (False while it is rebuilt)."""
        return self.version() == INDEX_VERSION

    def reset(self) -> None:
        """Empty tables of this layout, marked incomplete until :meth:`rebuild` commits."""
        with self.writing() as conn:
            _metadata.drop_all(conn)
            _metadata.create_all(conn)
            conn.exec_driver_sql("PRAGMA user_version=0")

    def _make_engine(self) -> Engine:
        if self.path is None:
            engine = create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
            event.listen(engine, "connect", _on_connect_reader)
        elif self.read_only:
            uri = self.path.as_uri() + "?mode=rw"  # fails, instead of creating, when missing

            def connect() -> sqlite3.Connection:
                return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=60)

            engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool)
            event.listen(engine, "connect", _on_connect_reader)
        else:
            # Pooled connections are used by one thread at a time (check_same_thread off).
            engine = create_engine(
                f"sqlite:///{self.path}",
                connect_args={"check_same_thread": False, "timeout": 60},
            )
            event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
        return engine

    def version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def discard(self) -> None:
        """Close and delete the index file and its journals (it is rebuilt from records)."""
        self.close()
        if self.path is None:
            return
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def replaced(self) -> bool:
        """Whether the file was deleted or replaced since :meth:`open` (another process
        rebuilt it, or someone removed it): then this process must open it again."""
        if self.path is None or self._engine is None:
            return False
        return _file_identity(self.path) != self._identity

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "the index is not open"
        return self._engine

    # -- writing --------------------------------------------------------------------------

    def writing(self) -> Any:
        """A write transaction (BEGIN IMMEDIATE)."""
        assert not self.read_only or self.path is None, "a read-only index is never written"
        return _Transaction(self.engine.connect().execution_options(dspex_write=True))

    def put(self, conn: Connection, summary: ExperimentSummary) -> None:
        self.remove(conn, summary.id)
        conn.execute(insert(_experiments), [summary_row(summary)])
        tags = tag_rows(summary)
        if tags:
            conn.execute(insert(_tags), tags)

    def put_many(self, conn: Connection, summaries: Iterable[ExperimentSummary]) -> None:
        rows, tags = [], []
        for summary in summaries:
            rows.append(summary_row(summary))
            tags.extend(tag_rows(summary))
        if rows:
            conn.execute(insert(_experiments), rows)
        if tags:
            conn.execute(insert(_tags), tags)

    def remove(self, conn: Connection, experiment_id: str) -> None:
        conn.execute(delete(_experiments).where(_experiments.c.id == experiment_id))
        conn.execute(delete(_tags).where(_tags.c.experiment_id == experiment_id))

    def rebuild(self, conn: Connection, summaries: Iterator[ExperimentSummary]) -> None:
        """Replace every row by ``summaries`` and mark the index valid, in ``conn``'s
        transaction: readers see the old index until the new one is complete."""
        conn.execute(delete(_experiments))
        conn.execute(delete(_tags))
        batch: list[ExperimentSummary] = []
        for summary in summaries:  # in batches, so memory stays flat however many
            batch.append(summary)
            if len(batch) >= 1000:
                self.put_many(conn, batch)
                batch.clear()
        self.put_many(conn, batch)
        conn.exec_driver_sql(f"PRAGMA user_version={INDEX_VERSION}")

    # -- reading --------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        if self._memory_lock is None:
            with self.engine.connect() as conn:
                yield conn
            return
        with self._memory_lock, self.engine.connect() as conn:
            yield conn

    def _read(self, action: Callable[[Connection], T]) -> T:
        with self._reading() as conn:
            return action(conn)

    def query(self, q: Query) -> list[ExperimentSummary]:
        texts = self._read(
            lambda conn: conn.execute(select_page(_experiments, _tags, q)).scalars().all()
        )
        return [summary_from_row(t) for t in texts]

    def count(self, q: Query) -> int:
        return self._read(
            lambda conn: int(conn.execute(select_count(_experiments, _tags, q)).scalar_one())
        )


class _Transaction:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __enter__(self) -> Connection:
        self._conn.begin()
        return self._conn

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if exc_type is None:
                self._conn.commit()
            else:
                self._conn.rollback()
        finally:
            self._conn.close()
