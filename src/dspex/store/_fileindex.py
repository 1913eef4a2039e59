"""The file backend's SQLite index of summaries: derived data, rebuilt from the files at will.

Readers use it without the store's lock (SQLite's WAL gives them a consistent snapshot);
writers hold the store's lock. Its layout version lives in ``PRAGMA user_version`` and
is written in the same transaction as the last row of a rebuild: an index counts as
valid only once it is complete, so a rebuild that fails or is killed is simply done
again. An index of another version, an incomplete one and a damaged one (not a
database, malformed) are rebuilt; a reader that may not change the store builds a
private copy in memory instead.

The index speaks to SQLite through the standard library's ``sqlite3``: the file store is
part of the core install, and ``dspex experiments ls`` answers before SQLAlchemy could
be imported. Its tables are those of :mod:`dspex.store._summarytable` (the sql
backend's, through SQLAlchemy), and its filters agree with
:func:`dspex.store.query.matches`: the conformance suite runs both on generated data.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dspex.store.query import ExperimentSummary, Query, fold, ranking_score

__all__ = ["FileIndex", "is_damage"]

INDEX_VERSION = 2  # 2: the score_scope column

_SCHEMA = (
    """CREATE TABLE experiments (
        id VARCHAR(30) NOT NULL PRIMARY KEY,
        program TEXT NOT NULL,
        optimizer TEXT NOT NULL,
        status VARCHAR(16) NOT NULL,
        created_us BIGINT NOT NULL,
        hypothesis_id VARCHAR(30),
        question_lc TEXT,
        best_score FLOAT,
        score_scope TEXT,
        sealed BOOLEAN NOT NULL,
        summary TEXT NOT NULL)""",
    "CREATE INDEX ix_exp_program_created ON experiments (program, created_us, id)",
    "CREATE INDEX ix_exp_optimizer ON experiments (optimizer, created_us)",
    "CREATE INDEX ix_exp_status ON experiments (status, created_us)",
    "CREATE INDEX ix_exp_created ON experiments (created_us, id)",
    "CREATE INDEX ix_exp_hypothesis ON experiments (hypothesis_id)",
    "CREATE INDEX ix_exp_score ON experiments (best_score, id)",
    "CREATE INDEX ix_exp_scope_score ON experiments (score_scope, best_score, id)",
    """CREATE TABLE tags (
        experiment_id VARCHAR(30) NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (experiment_id, tag))""",
    "CREATE INDEX ix_tags_tag ON tags (tag, experiment_id)",
)
_COLUMNS = (
    "id, program, optimizer, status, created_us, hypothesis_id, question_lc, best_score, "
    "score_scope, sealed, summary"
)
_INSERT = f"INSERT INTO experiments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
_FEW_TAGS = 4
_SAME_EXPERIMENT = "tags.experiment_id = experiments.id"


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` says the index file is damaged (as opposed to busy or unreadable)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        transient = ("locked", "busy", "unable to open", "i/o", "disk is full", "readonly")
        return not any(word in message for word in transient)
    return True


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

    Connections are pooled: each is used by one thread at a time.
    """

    def __init__(self, path: Path | None, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._idle: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._generation = 0  # connections of an older generation are closed, not reused
        self._open = False
        self._identity: tuple[int, int] | None = None
        # An in-memory index is one connection: threads take turns.
        self._memory: sqlite3.Connection | None = None
        self._memory_lock = threading.Lock() if path is None else None

    # -- lifecycle ----------------------------------------------------------------------

    def open(self) -> None:
        """Connect (a writer's index file is created when missing).

        A damaged file raises :class:`sqlite3.DatabaseError` (see :func:`is_damage`).
        """
        self.close()
        connection = self._connect()
        with self._pool_lock:
            self._open = True
            if self._memory_lock is not None:
                self._memory = connection
            else:
                self._idle.append(connection)
        self._identity = None if self.path is None else _file_identity(self.path)

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            connection = sqlite3.connect(":memory:", check_same_thread=False)
        elif self.read_only:
            uri = self.path.as_uri() + "?mode=rw"  # fails, instead of creating, when missing
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=60)
        else:
            connection = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        try:
            connection.isolation_level = None  # we issue BEGIN ourselves
            if self.path is not None and not self.read_only:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")  # the index is rebuildable
            connection.execute("PRAGMA busy_timeout=60000")
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except BaseException:
            connection.close()
            raise
        return connection

    @property
    def valid(self) -> bool:
        """Whether the index is complete and of this layout (False while it is rebuilt)."""
        return self.version() == INDEX_VERSION

    def reset(self) -> None:
        """Empty tables of this layout, marked incomplete until :meth:`rebuild` commits."""
        with self.writing() as conn:
            conn.execute("DROP TABLE IF EXISTS tags")
            conn.execute("DROP TABLE IF EXISTS experiments")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("PRAGMA user_version=0")

    def version(self) -> int:
        with self._connection() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0] or 0)

    def close(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
            memory, self._memory = self._memory, None
            self._generation += 1
            self._open = False
        for connection in [*idle, *([memory] if memory is not None else [])]:
            connection.close()

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
        if self.path is None or not self._open:
            return False
        return _file_identity(self.path) != self._identity

    @property
    def is_open(self) -> bool:
        return self._open

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        assert self._open, "the index is not open"
        if self._memory_lock is not None:
            with self._memory_lock:
                assert self._memory is not None, "the index is not open"
                yield self._memory
            return
        with self._pool_lock:
            generation = self._generation
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._connect()
        try:
            yield connection
        finally:
            if connection.in_transaction:  # an interrupted statement: leave nothing open
                connection.rollback()
            with self._pool_lock:
                reuse = self._open and generation == self._generation
                if reuse:
                    self._idle.append(connection)
            if not reuse:
                connection.close()

    # -- writing --------------------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE), committed when the block ends."""
        assert not self.read_only or self.path is None, "a read-only index is never written"
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def put(self, conn: sqlite3.Connection, summary: ExperimentSummary) -> None:
        self.remove(conn, summary.id)
        self.put_many(conn, [summary])

    def put_many(self, conn: sqlite3.Connection, summaries: Iterable[ExperimentSummary]) -> None:
        rows: list[tuple[Any, ...]] = []
        tags: list[tuple[str, str]] = []
        for summary in summaries:
            rows.append(_row(summary))
            tags.extend((summary.id, _text(tag)) for tag in set(summary.tags))
        if rows:
            conn.executemany(_INSERT, rows)
        if tags:
            conn.executemany("INSERT INTO tags (experiment_id, tag) VALUES (?, ?)", tags)

    def remove(self, conn: sqlite3.Connection, experiment_id: str) -> None:
        conn.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))
        conn.execute("DELETE FROM tags WHERE experiment_id = ?", (experiment_id,))

    def rebuild(self, conn: sqlite3.Connection, summaries: Iterator[ExperimentSummary]) -> None:
        """Replace every row by ``summaries`` and mark the index valid, in ``conn``'s
        transaction: readers see the old index until the new one is complete."""
        conn.execute("DELETE FROM experiments")
        conn.execute("DELETE FROM tags")
        batch: list[ExperimentSummary] = []
        for summary in summaries:  # in batches, so memory stays flat however many
            batch.append(summary)
            if len(batch) >= 1000:
                self.put_many(conn, batch)
                batch.clear()
        self.put_many(conn, batch)
        conn.execute(f"PRAGMA user_version={INDEX_VERSION}")

    # -- reading --------------------------------------------------------------------------

    def query(self, q: Query) -> list[ExperimentSummary]:
        where, params = _where(q)
        if q.order_by == "score":
            order = "best_score IS NULL, best_score DESC, id DESC"
        else:
            order = "created_us DESC, id DESC"
        sql = f"SELECT summary FROM experiments{where} ORDER BY {order} LIMIT ? OFFSET ?"
        with self._connection() as conn:
            conn.execute("BEGIN")  # one snapshot
            try:
                texts = [r[0] for r in conn.execute(sql, [*params, q.limit, q.offset])]
            finally:
                conn.rollback()
        return [ExperimentSummary.from_json(t) for t in texts]

    def count(self, q: Query) -> int:
        where, params = _where(q, paged=False)
        with self._connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM experiments{where}", params).fetchone()
        return int(row[0])


def micros(moment: datetime) -> int:
    """A UTC datetime as integer microseconds since the epoch (exact, sorts everywhere)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _text(value: str) -> str:
    return value.replace("\x00", "\ufffd")  # as the sql backend stores text


def _row(summary: ExperimentSummary) -> tuple[Any, ...]:
    question = summary.research_question
    return (
        summary.id,
        _text(summary.program),
        _text(summary.optimizer or ""),
        summary.status.value,
        micros(summary.created_at),
        summary.hypothesis_id,
        None if question is None else _text(question.lower()),
        ranking_score(summary),  # NaN and inf rank as no score (query.py)
        _text(summary.score_scope.key) if summary.score_scope else None,
        1 if summary.sealed else 0,
        summary.to_json(),
    )


def _like_contains(value: str) -> str:
    escaped = value.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _where(q: Query, *, paged: bool = True) -> tuple[str, list[Any]]:
    """The WHERE clause (with its leading space) and its parameters for ``q``'s filters."""
    clauses: list[str] = []
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        clauses.append(clause)
        params.extend(values)

    if q.hypothesis_id is not None:
        add("hypothesis_id = ?", q.hypothesis_id)
    if q.hypothesis_text is not None:
        add("question_lc LIKE ? ESCAPE '/'", _like_contains(_text(q.hypothesis_text.lower())))
    # SQLite's lower() folds ASCII letters only, as query.fold does
    if q.program is not None:
        add("lower(program) = ?", fold(_text(q.program)))
    if q.optimizer is not None:
        add("lower(optimizer) = ?", fold(_text(q.optimizer)))
    if q.statuses:
        add(f"status IN ({', '.join('?' * len(q.statuses))})", *(s.value for s in q.statuses))
    if q.tags:
        _tags_clause(q.tags, add)
    if q.created_after is not None:
        add("created_us >= ?", micros(q.created_after))
    if q.created_before is not None:
        add("created_us < ?", micros(q.created_before))
    _score_clauses(q, add)
    if paged and q.after is not None:
        _after_clause(q, add)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _score_clauses(q: Query, add: Any) -> None:
    if q.scope is not None:
        add("score_scope = ?", _text(q.scope))
    if q.min_score is not None:
        add("best_score >= ?", q.min_score)
    if q.max_score is not None:
        add("best_score <= ?", q.max_score)


def _tags_clause(wanted: tuple[str, ...], add: Any) -> None:
    """Experiments that have every tag in ``wanted`` (see _summarytable._has_tags)."""
    keys = sorted({_text(tag) for tag in wanted})
    if len(keys) <= _FEW_TAGS:
        for key in keys:
            add(f"EXISTS (SELECT 1 FROM tags WHERE {_SAME_EXPERIMENT} AND tags.tag = ?)", key)
        return
    marks = ", ".join("?" * len(keys))
    add(
        f"id IN (SELECT experiment_id FROM tags WHERE tag IN ({marks}) "
        "GROUP BY experiment_id HAVING count(*) = ?)",
        *keys,
        len(keys),
    )


def _after_clause(q: Query, add: Any) -> None:
    assert q.after is not None
    value, last_id = q.after[0], q.after[1]
    if q.order_by == "created":
        at = micros(value)
        add("(created_us < ? OR (created_us = ? AND id < ?))", at, at, last_id)
    elif value is None:  # the last row had no score: only unscored rows with smaller ids
        add("(best_score IS NULL AND id < ?)", last_id)
    else:
        add(
            "(best_score IS NULL OR best_score < ? OR (best_score = ? AND id < ?))",
            value,
            value,
            last_id,
        )
