"""The sql backend: SQLite (``sqlite:///path.db``) or PostgreSQL (``postgresql://...``).

Built on SQLAlchemy 2 Core; the schema comes from the Alembic migrations shipped in
``dspex/store/migrations`` and is applied by ``dspex store migrate``, or by :meth:`open`
when ``store.auto_migrate`` is true. ``postgresql://`` URLs use psycopg 3
(``pip install 'dspex[postgres]'``).

Sealing is one transaction; the id's primary key makes concurrent archiving of one id
from many processes or machines safe (the loser sees the winner's checksum). SQLite
write transactions start with ``BEGIN IMMEDIATE`` so that writers queue instead of
failing.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    make_url,
    select,
    update,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool

from dspex.config.schema import sql_url_problem
from dspex.errors import (
    CorruptRecordError,
    ExperimentNotFound,
    ImmutableRecordError,
    StoreUnavailable,
    ValidationError,
)
from dspex.extras import require
from dspex.model import Experiment, StudyRecord, StudySummary, TraceEvent, Trial
from dspex.redact import redact_text
from dspex.store import _sqltables as tables
from dspex.store import migrate
from dspex.store._events import (
    EventIndex,
    EventPart,
    fit_parts,
    parse_experiment,
    parse_trial,
    read_parts,
    splice_parts,
    trial_json,
)
from dspex.store._summaries import load_each, parse_headers
from dspex.store._summarytable import micros, select_count, select_page, summary_from_row
from dspex.store.backend import (
    BackendOptions,
    DamagedRecord,
    SealOutcome,
    StoreBackend,
    redact_url,
    register_backend,
)
from dspex.store.codec import EncodedRecord, sha256, splice
from dspex.store.query import ExperimentSummary, Query, summary_of

_R = TypeVar("_R", Experiment, Trial)

__all__ = ["SqlBackend", "engine_for_url"]

E, T, TAGS, S = tables.experiments, tables.trials, tables.tags, tables.studies
P = tables.event_parts


def engine_for_url(url: str, *, read_only: bool = False) -> Engine:
    """An engine for a dspex sql URL (no connection is made yet).

    ``read_only``: SQLite never creates the file (a missing one raises
    :class:`dspex.StoreUnavailable` naming the URL) and no pragma changes it.
    """
    problem = sql_url_problem(url)
    if problem:
        raise StoreUnavailable(f"cannot use the ResultStore at {redact_url(url)}: {problem}")
    if url.startswith(("postgresql", "postgres:")):
        require("psycopg", "postgres", f"the ResultStore at {redact_url(url)}")
        url = "postgresql+psycopg:" + url.split(":", 1)[1]
        return create_engine(url, pool_pre_ping=True)
    engine = _sqlite_reader(url) if read_only else _sqlite_writer(url)
    event.listen(engine, "connect", _sqlite_connect_reader if read_only else _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_writer(url: str) -> Engine:
    try:
        return create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})
    except ArgumentError as exc:
        raise StoreUnavailable(f"cannot use the ResultStore at {redact_url(url)}: {exc}") from exc


def _sqlite_reader(url: str) -> Engine:
    database = make_url(url).database
    path = Path(database or "")
    if not database or database == ":memory:" or not path.is_file():
        raise StoreUnavailable(
            f"no ResultStore at {redact_url(url)}: {database or '(no file)'} does not exist"
        )
    uri = path.resolve().as_uri() + "?mode=rw"  # SQLite fails instead of creating the file

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=60)

    return create_engine("sqlite://", creator=connect, poolclass=QueuePool)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=FULL")  # a commit survives power loss
    dbapi_connection.execute("PRAGMA busy_timeout=60000")
    dbapi_connection.execute("PRAGMA foreign_keys=ON")


def _sqlite_connect_reader(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # changes nothing: not even the journal mode
    dbapi_connection.execute("PRAGMA busy_timeout=60000")


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("dspex_write")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_F = TypeVar("_F", bound=Callable[..., Any])


def _retrying(method: _F) -> _F:
    """Try an idempotent write once more when the first try failed because the tables
    had vanished (restored meanwhile) or the server dropped the connection."""

    @functools.wraps(method)
    def wrapper(self: SqlBackend, /, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StoreUnavailable as exc:
            if not _retry_once(exc):
                raise
            return method(self, *args, **kwargs)

    return cast(_F, wrapper)


def _missing_schema(exc: DBAPIError) -> bool:
    """Whether ``exc`` says that dspex's tables are not there (PostgreSQL 42P01)."""
    state = getattr(exc.orig, "sqlstate", None)
    return state == "42P01" or "no such table" in str(exc.orig or exc)


def _retry_once(exc: StoreUnavailable) -> bool:
    """Whether a failed write may be tried again at once, on a fresh session: its tables
    were restored, the server dropped its connection, or the session was read-only (one
    opened while the database was read-only stays so after it is made writable)."""
    cause = exc.__cause__
    if not isinstance(cause, DBAPIError):
        return False
    state = getattr(cause.orig, "sqlstate", None) or ""
    return (
        _missing_schema(cause)
        or state.startswith(("08", "57P"))
        or state == "25006"
        or bool(cause.connection_invalidated)
    )


class SqlBackend(StoreBackend):
    """Experiments in three tables (see :mod:`dspex.store._sqltables`)."""

    part_transform = staticmethod(tables.compress)  # trials compress while they serialize

    def __init__(self, url: str, options: BackendOptions | None = None) -> None:
        self.url = url
        options = options or BackendOptions()
        self.auto_migrate = options.auto_migrate
        self.read_only = options.read_only
        self._engine: Engine | None = None
        self._schema_lost = False  # the tables vanished (a database dropped and re-created)

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> None:
        engine = engine_for_url(self.url, read_only=self.read_only)
        try:
            with self._guard(), engine.connect() as conn:
                revision = migrate.current_revision(conn)
            if revision is None and self.read_only:
                raise StoreUnavailable(
                    f"no ResultStore at {redact_url(self.url)}: the database has no dspex "
                    "tables; record something there first, or run `dspex store migrate`"
                )
            if revision != migrate.head():
                if not self.auto_migrate:
                    raise StoreUnavailable(
                        f"the ResultStore at {redact_url(self.url)} has schema revision "
                        f"{revision or '(none)'}, this dspex needs {migrate.head()}: run "
                        "`dspex store migrate` (or set store.auto_migrate = true)"
                    )
                self._migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine

    def migrate(self) -> tuple[str | None, str]:
        """Apply pending migrations (without opening); return (revision before, after)."""
        engine = engine_for_url(self.url)
        try:
            with self._guard(), engine.connect() as conn:
                before = migrate.current_revision(conn)
            self._migrate(engine)
            return before, migrate.head()
        finally:
            engine.dispose()

    def _migrate(self, engine: Engine) -> None:
        with self._guard(), engine.connect() as conn:
            conn.execution_options(dspex_write=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":  # one migrator at a time, cluster-wide
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(814151932)")
                if migrate.current_revision(conn) != migrate.head():
                    migrate.upgrade(conn)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            # Fresh sessions next time: a pooled session may be one the server killed, or
            # one opened while the database was read-only (it stays read-only after the
            # database is made writable again).
            if self._engine is not None:
                self._engine.dispose()
            if _missing_schema(exc):
                self._schema_lost = True
            cause = redact_text(str(exc.orig or exc).strip().splitlines()[0])
            raise StoreUnavailable(
                f"cannot use the ResultStore at {redact_url(self.url)}: {cause}{_advice(exc)}"
            ) from exc

    @contextmanager
    def _read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A connection for reading; ``snapshot``: every statement sees the same moment
        (SQLite's read transaction always does; PostgreSQL needs REPEATABLE READ)."""
        assert self._engine is not None, "the sql store is not open"
        self._restore_schema()
        with self._guard(), self._engine.connect() as conn:
            if snapshot and conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            yield conn

    def _restore_schema(self) -> None:
        """After the tables vanished (the database was dropped and re-created): migrate
        the new one, when migrations are allowed."""
        if self._schema_lost and self.auto_migrate and self._engine is not None:
            self._migrate(self._engine)
            self._schema_lost = False

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        assert self._engine is not None, "the sql store is not open"
        self._restore_schema()
        with self._guard(), self._engine.connect() as conn:
            conn.execution_options(dspex_write=True)
            with conn.begin():
                yield conn

    # -- writing ------------------------------------------------------------------------

    def _lock_row(self, conn: Connection, experiment_id: str) -> Any:
        stmt = select(E.c.sealed, E.c.checksum, E.c.header).where(E.c.id == experiment_id)
        return conn.execute(stmt.with_for_update()).first()

    @_retrying
    def write_running(self, experiment: Experiment) -> None:
        for _ in range(3):
            try:
                with self._write() as conn:
                    self._put_running(conn, experiment)
                return
            except IntegrityError:  # another writer created the row first: try again
                continue
        raise StoreUnavailable(f"experiment {experiment.id}: concurrent writers kept colliding")

    def _put_running(self, conn: Connection, experiment: Experiment) -> None:
        row = self._lock_row(conn, experiment.id)
        if row is not None and row.sealed:
            raise ImmutableRecordError(f"experiment {experiment.id!r} is sealed")
        count = 0 if row is None else _trial_count(conn, experiment.id)
        summary = summary_of(experiment, sealed=False, checksum=None)
        values = tables.running_row(
            summary.model_copy(update={"trial_count": count}), experiment.to_json_bytes()
        )
        self._replace_summary(conn, row is not None, values, summary)

    def _replace_summary(
        self, conn: Connection, exists: bool, values: dict[str, Any], summary: ExperimentSummary
    ) -> None:
        if exists:
            conn.execute(update(E).where(E.c.id == summary.id).values(values))
            conn.execute(delete(TAGS).where(TAGS.c.experiment_id == summary.id))
        else:
            conn.execute(insert(E).values(values))
        tag_rows = tables.summary_tag_rows(summary)
        if tag_rows:
            conn.execute(insert(TAGS), tag_rows)

    @_retrying
    def write_trial(self, experiment_id: str, trial: Trial) -> None:
        with self._write() as conn:
            row = self._lock_row(conn, experiment_id)
            if row is None:
                raise ExperimentNotFound(experiment_id)
            if row.sealed:
                raise ImmutableRecordError(f"experiment {experiment_id!r} is sealed")
            key = (T.c.experiment_id == experiment_id) & (T.c.trial_id == trial.id)
            conn.execute(delete(T).where(key))
            data, _, index = trial_json(trial)
            conn.execute(
                insert(T).values(
                    experiment_id=experiment_id,
                    trial_id=trial.id,
                    position=trial.index,
                    payload=tables.compress(data),
                    events=tables.index_text(index),
                )
            )
            header = _parse(experiment_id, Experiment, tables.decompress(experiment_id, row.header))
            summary = summary_of(header, sealed=False, checksum=None)
            summary = summary.model_copy(update={"trial_count": _trial_count(conn, experiment_id)})
            conn.execute(update(E).where(E.c.id == experiment_id).values(summary=summary.to_json()))

    @_retrying
    def seal(self, record: EncodedRecord) -> SealOutcome:
        row, trial_rows = tables.experiment_rows(record)
        for _ in range(3):
            try:
                with self._write() as conn:
                    existing = self._lock_row(conn, record.id)
                    if existing is not None and existing.sealed:
                        return SealOutcome(stored=False, existing_checksum=existing.checksum)
                    if existing is not None:
                        conn.execute(delete(T).where(T.c.experiment_id == record.id))
                        conn.execute(delete(P).where(P.c.experiment_id == record.id))
                    self._replace_summary(conn, existing is not None, row, record.summary)
                    if trial_rows:
                        conn.execute(insert(T), trial_rows)
                return SealOutcome(stored=True)
            except IntegrityError:  # another process sealed or started this id meanwhile
                continue
        raise StoreUnavailable(f"experiment {record.id}: concurrent writers kept colliding")

    @_retrying
    def append_parts(self, experiment_id: str, trial_id: str, parts: Sequence[EventPart]) -> None:
        with self._write() as conn:
            row = self._lock_row(conn, experiment_id)  # appenders of one experiment queue here
            if row is None:
                raise ExperimentNotFound(experiment_id)
            if row.sealed:
                raise ImmutableRecordError(f"experiment {experiment_id!r} is sealed")
            last = conn.execute(
                select(func.max(P.c.last_seq)).where(_part_key(experiment_id, trial_id))
            ).scalar()
            stored = 0 if last is None else int(last) + 1
            where = f"trial {trial_id} of experiment {experiment_id}"
            new = fit_parts(stored, parts, trial_id, where)
            if new:
                conn.execute(
                    insert(P),
                    [
                        {
                            "experiment_id": experiment_id,
                            "trial_id": trial_id,
                            "first_seq": part.first,
                            "last_seq": part.stop - 1,
                            "payload": tables.compress(part.data),
                        }
                        for part in new
                    ],
                )

    def _part_spans(self, conn: Connection, experiment_id: str, trial_id: str) -> list[Any]:
        stmt = (
            select(P.c.first_seq, P.c.last_seq)
            .where(_part_key(experiment_id, trial_id))
            .order_by(P.c.first_seq)
        )
        return list(conn.execute(stmt).all())

    def event_parts(self, experiment_id: str, trial_id: str) -> list[EventPart]:
        stmt = (
            select(P.c.first_seq, P.c.last_seq, P.c.payload)
            .where(_part_key(experiment_id, trial_id))
            .order_by(P.c.first_seq)
        )
        with self._read(snapshot=True) as conn:
            rows = conn.execute(stmt).all()
        return [
            EventPart(
                r.first_seq,
                r.last_seq - r.first_seq + 1,
                tables.decompress(experiment_id, r.payload),
            )
            for r in rows
        ]

    def _with_parts(
        self, experiment_id: str, trial_id: str, data: bytes, index: EventIndex | None
    ) -> tuple[bytes, EventIndex | None]:
        """A running trial recorded without events, with the events appended to it."""
        if index is None or index.count:
            return data, index
        parts = self.event_parts(experiment_id, trial_id)
        return splice_parts(data, index.at, parts) if parts else (data, index)

    # -- reading ------------------------------------------------------------------------

    def load(self, experiment_id: str) -> Experiment | None:
        with self._read(snapshot=True) as conn:  # not a header of one moment, trials of another
            row = conn.execute(
                select(E.c.sealed, E.c.checksum, E.c.header, E.c.trials_at).where(
                    E.c.id == experiment_id
                )
            ).first()
            if row is None:
                return None
            rows = conn.execute(
                select(T.c.trial_id, T.c.payload, T.c.events)
                .where(T.c.experiment_id == experiment_id)
                .order_by(T.c.position)
            ).all()
            parts = [tables.decompress(experiment_id, r.payload) for r in rows]
        header = tables.decompress(experiment_id, row.header)
        if not row.sealed:
            experiment = _parse(experiment_id, Experiment, header)
            trials = sorted(
                (
                    _parse_trial(
                        experiment_id,
                        *self._with_parts(experiment_id, r.trial_id, p, tables.index_of(r.events)),
                    )
                    for p, r in zip(parts, rows, strict=True)
                ),
                key=lambda t: t.index,
            )
            return experiment.replace(trials=tuple(trials)) if trials else experiment
        body = splice(header, row.trials_at, parts)
        if sha256(body) != row.checksum:
            raise CorruptRecordError(experiment_id, "content does not match its checksum")
        if not parts or row.trials_at is None:
            return _parse(experiment_id, Experiment, body)
        del body
        try:
            parsed = parse_experiment(
                header, [(p, tables.index_of(r.events)) for p, r in zip(parts, rows, strict=True)]
            )
        except ValidationError as exc:
            raise CorruptRecordError(experiment_id, f"does not parse: {exc}") from exc
        if parsed.id != experiment_id:
            raise CorruptRecordError(experiment_id, f"its row holds experiment {parsed.id!r}")
        return parsed

    def load_headers(self, experiment_id: str) -> Experiment | None:
        """A sealed experiment's trials without their events: their headers and the
        summaries of their events as sealed (migration 0006), not their payloads; rows
        sealed before, or a damaged copy, read the trials' payloads instead."""
        with self._read(snapshot=True) as conn:
            row = conn.execute(
                select(E.c.sealed, E.c.header, E.c.trials_at).where(E.c.id == experiment_id)
            ).first()
            if row is None:
                return None
            rows = conn.execute(
                select(T.c.trial_id, T.c.header, T.c.summary)
                .where(T.c.experiment_id == experiment_id)
                .order_by(T.c.position)
            ).all()
        if not row.sealed or not rows or not tables.has_digest(row.header):
            return super().load_headers(experiment_id)
        headers = [tables.checked_body(r.header) for r in rows]
        summaries = {r.trial_id: tables.checked_body(r.summary) for r in rows}
        if any(h is None for h in headers) or any(s is None for s in summaries.values()):
            return super().load_headers(experiment_id)
        texts = [s for s in summaries.values() if s is not None]
        try:
            parsed = parse_headers(
                tables.decompress(experiment_id, row.header),
                [h.encode() for h in headers if h is not None],
                # parsed all at once (none is None: checked above)
                dict(zip(summaries, load_each([v.encode() for v in texts]), strict=True)),
            )
        except (ValidationError, ValueError) as exc:
            raise CorruptRecordError(experiment_id, f"does not parse: {exc}") from exc
        if parsed.id != experiment_id:
            raise CorruptRecordError(experiment_id, f"its row holds experiment {parsed.id!r}")
        return parsed

    def _trial_row(
        self, experiment_id: str, trial_id: str
    ) -> tuple[bytes, EventIndex | None] | None:
        key = (T.c.experiment_id == experiment_id) & (T.c.trial_id == trial_id)
        with self._read() as conn:
            row = conn.execute(select(T.c.payload, T.c.events).where(key)).first()
        if row is None:
            return None
        data = tables.decompress(experiment_id, row.payload)
        return self._with_parts(experiment_id, trial_id, data, tables.index_of(row.events))

    def load_trial(self, experiment_id: str, trial_id: str) -> Trial | None:
        found = self._trial_row(experiment_id, trial_id)
        if found is None:
            return None
        return _checked(experiment_id, trial_id, _parse_trial(experiment_id, *found))

    def load_trial_header(self, experiment_id: str, trial_id: str) -> Trial | None:
        found = self._trial_row(experiment_id, trial_id)
        if found is None:
            return None
        trial = _parse_trial(experiment_id, *found, events=False)
        return _checked(experiment_id, trial_id, trial)

    def load_events(
        self, experiment_id: str, trial_id: str, offset: int, limit: int | None
    ) -> list[TraceEvent] | None:
        found = self._trial_row(experiment_id, trial_id)
        if found is None:
            return self._appended_events(experiment_id, trial_id, offset, limit)
        data, index = found
        if index is None:
            trial = _checked(experiment_id, trial_id, _parse_trial(experiment_id, data, None))
            return list(trial.events[offset : None if limit is None else offset + limit])
        try:
            return index.read(data, trial_id, offset, limit)
        except ValidationError as exc:
            raise CorruptRecordError(experiment_id, f"does not parse: {exc}") from exc

    def count_events(self, experiment_id: str, trial_id: str) -> int | None:
        key = (T.c.experiment_id == experiment_id) & (T.c.trial_id == trial_id)
        with self._read() as conn:
            row = conn.execute(select(T.c.events).where(key)).first()
        if row is None:
            with self._read() as conn:
                spans = self._part_spans(conn, experiment_id, trial_id)
            return spans[-1].last_seq + 1 if spans else None
        index = tables.index_of(row.events)
        if index is not None and not index.count:
            with self._read() as conn:
                spans = self._part_spans(conn, experiment_id, trial_id)
            return spans[-1].last_seq + 1 if spans else 0
        if index is not None:
            return index.count
        return super().count_events(experiment_id, trial_id)

    def _appended_events(
        self, experiment_id: str, trial_id: str, offset: int, limit: int | None
    ) -> list[TraceEvent] | None:
        """Events appended to a trial not recorded yet (None when there are none)."""
        with self._read(snapshot=True) as conn:
            spans = [
                (r.first_seq, r.last_seq - r.first_seq + 1)
                for r in self._part_spans(conn, experiment_id, trial_id)
            ]
            if not spans:
                return None

            def fetch(k: int) -> bytes:
                key = _part_key(experiment_id, trial_id) & (P.c.first_seq == spans[k][0])
                payload = conn.execute(select(P.c.payload).where(key)).scalar_one()
                return tables.decompress(experiment_id, payload)

            try:
                return read_parts(spans, fetch, trial_id, offset, limit)
            except ValidationError as exc:
                raise CorruptRecordError(experiment_id, f"does not parse: {exc}") from exc

    def query(self, query: Query) -> list[ExperimentSummary]:
        with self._read() as conn:
            texts = conn.execute(select_page(E, TAGS, query)).scalars().all()
        return [summary_from_row(t) for t in texts]

    def count(self, query: Query) -> int:
        with self._read() as conn:
            return int(conn.execute(select_count(E, TAGS, query)).scalar_one())

    def verify(self) -> Iterator[DamagedRecord]:
        last = ""
        while True:
            with self._read() as conn:
                ids = (
                    conn.execute(
                        select(E.c.id)
                        .where(E.c.sealed.is_(True), E.c.id > last)
                        .order_by(E.c.id)
                        .limit(500)
                    )
                    .scalars()
                    .all()
                )
            if not ids:
                return
            for experiment_id in ids:
                try:
                    experiment = self.load(experiment_id)
                except CorruptRecordError as exc:
                    yield DamagedRecord(experiment_id, exc.reason)
                    continue
                if experiment is not None:
                    with self._read() as conn:
                        rows = conn.execute(
                            select(T.c.trial_id, T.c.header, T.c.summary).where(
                                T.c.experiment_id == experiment_id
                            )
                        ).all()
                    for reason in tables.derived_problems(experiment, rows):
                        yield DamagedRecord(experiment_id, reason)
            last = ids[-1]

    # -- studies ----------------------------------------------------------------------------

    def write_study(self, study: StudyRecord, previous_revision: int) -> int | None:
        values = {
            "revision": study.revision,
            "updated_us": micros(study.updated_at),
            "summary": study.summary().to_json(),
            "payload": tables.compress(study.to_json_bytes()),
        }
        try:
            with self._write() as conn:
                stmt = select(S.c.revision).where(S.c.name == study.name).with_for_update()
                found = conn.execute(stmt).scalar()
                if (found or 0) != previous_revision:
                    return int(found or 0)
                if found is None:
                    conn.execute(insert(S).values(name=study.name, **values))
                else:
                    conn.execute(update(S).where(S.c.name == study.name).values(values))
        except IntegrityError:  # another process inserted it first
            with self._read() as conn:
                stmt = select(S.c.revision).where(S.c.name == study.name)
                return int(conn.execute(stmt).scalar() or 0)
        return None

    def load_study(self, name: str) -> StudyRecord | None:
        with self._read() as conn:
            payload = conn.execute(select(S.c.payload).where(S.c.name == name)).scalar()
        if payload is None:
            return None
        try:
            study = StudyRecord.from_json(tables.decompress(name, payload))
        except ValidationError as exc:
            raise CorruptRecordError(name, f"the study does not parse: {exc}") from exc
        if study.name != name:
            raise CorruptRecordError(name, f"its row holds study {study.name!r}")
        return study

    def list_studies(self, limit: int, offset: int) -> list[StudySummary]:
        stmt = (
            select(S.c.summary)
            .order_by(S.c.updated_us.desc(), S.c.name)
            .limit(limit)
            .offset(offset)
        )
        with self._read() as conn:
            texts = conn.execute(stmt).scalars().all()
        return [StudySummary.from_json(text) for text in texts]


def _parse(experiment_id: str, kind: type[_R], data: bytes) -> _R:
    """A stored record parsed, and checked to belong to ``experiment_id``."""
    try:
        parsed = kind.from_json(data)
    except ValidationError as exc:
        raise CorruptRecordError(experiment_id, f"does not parse: {exc}") from exc
    owner = parsed.id if isinstance(parsed, Experiment) else parsed.experiment_id
    if owner != experiment_id:
        raise CorruptRecordError(experiment_id, f"its row holds experiment {owner!r}")
    return parsed


def _parse_trial(
    experiment_id: str, data: bytes, index: EventIndex | None, *, events: bool = True
) -> Trial:
    """A stored trial parsed (quickly when its events are indexed), checked to belong to
    ``experiment_id``."""
    try:
        trial = parse_trial(data, index, events=events)
    except ValidationError as exc:
        raise CorruptRecordError(experiment_id, f"does not parse: {exc}") from exc
    if trial.experiment_id != experiment_id:
        raise CorruptRecordError(experiment_id, f"its row holds experiment {trial.experiment_id!r}")
    return trial


def _checked(experiment_id: str, trial_id: str, trial: Trial) -> Trial:
    if trial.id != trial_id:
        raise CorruptRecordError(experiment_id, f"the row of trial {trial_id} holds {trial.id}")
    return trial


_FULL_STATES = {"53100", "53200", "53400"}  # PostgreSQL: disk full, out of memory, limits


def _advice(exc: DBAPIError) -> str:
    """What to do about a failure, when the cause says it."""
    message = str(exc.orig or exc).lower()
    state = getattr(exc.orig, "sqlstate", None)
    if state in _FULL_STATES or "disk is full" in message or "disk i/o error" in message:
        return (
            " (the disk is full, or a size limit was reached); free space and retry: what "
            "was written before is kept"
        )
    if state == "25006" or "read-only" in message or "readonly" in message:
        return "; the database is read-only: make it writable and retry"
    return ""


def _part_key(experiment_id: str, trial_id: str) -> Any:
    return (P.c.experiment_id == experiment_id) & (P.c.trial_id == trial_id)


def _trial_count(conn: Connection, experiment_id: str) -> int:
    stmt = select(func.count()).select_from(T).where(T.c.experiment_id == experiment_id)
    return int(conn.execute(stmt).scalar_one())


def _factory(url: str, options: BackendOptions) -> SqlBackend:
    return SqlBackend(url, options)


register_backend("sqlite", _factory)
register_backend("postgresql", _factory)
register_backend("postgres", _factory)
