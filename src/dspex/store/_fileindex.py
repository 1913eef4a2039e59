"""The file backend's SQLite index of summaries: derived data, rebuilt from the files at will.

Readers use it without the store's lock (SQLite's WAL gives them a consistent snapshot);
writers hold the store's lock. Its layout version lives in ``PRAGMA user_version``; an
index of another version is dropped and rebuilt.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, delete, event, insert

from dspex.store._summarytable import (
    select_count,
    select_page,
    summary_from_row,
    summary_row,
    summary_tables,
    tag_rows,
)
from dspex.store.query import ExperimentSummary, Query

__all__ = ["FileIndex"]

INDEX_VERSION = 2  # 2: the score_scope column
_metadata = MetaData()
_experiments, _tags = summary_tables(_metadata, "")


def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # the index is rebuildable
    dbapi_connection.execute("PRAGMA busy_timeout=60000")


def _on_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("dspex_write")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class FileIndex:
    """Summaries and tags of every experiment in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._engine: Engine | None = None

    def open(self) -> bool:
        """Connect; create the tables. Returns True when the index was (re)created empty."""
        # Pooled connections are used by one thread at a time (check_same_thread off).
        engine = create_engine(
            f"sqlite:///{self.path}", connect_args={"check_same_thread": False, "timeout": 60}
        )
        event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
        self._engine = engine
        with self.writing() as conn:
            version = conn.exec_driver_sql("PRAGMA user_version").scalar()
            fresh = version != INDEX_VERSION
            if fresh:
                _metadata.drop_all(conn)
                _metadata.create_all(conn)
                conn.exec_driver_sql(f"PRAGMA user_version={INDEX_VERSION}")
        return fresh

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "the index is not open"
        return self._engine

    def writing(self) -> Any:
        """A write transaction (BEGIN IMMEDIATE)."""
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

    def clear(self, conn: Connection) -> None:
        conn.execute(delete(_experiments))
        conn.execute(delete(_tags))

    def query(self, q: Query) -> list[ExperimentSummary]:
        with self.engine.connect() as conn:
            texts = conn.execute(select_page(_experiments, _tags, q)).scalars().all()
        return [summary_from_row(t) for t in texts]

    def count(self, q: Query) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select_count(_experiments, _tags, q)).scalar_one())

    def checksums(self) -> dict[str, str | None]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                _experiments.select().with_only_columns(_experiments.c.id, _experiments.c.summary)
            ).all()
        return {r.id: summary_from_row(r.summary).checksum for r in rows}


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
