"""PostgreSQL failing under a running store: each failure is a StoreError naming the store,
and once the database is back the next write works (fresh sessions, a re-created database
migrated again). On the session's throwaway PostgreSQL server (``postgres_server``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dspex import ExperimentNotFound, ResultStore, StoreUnavailable
from tests.store.conftest import _admin
from tests.store.test_conformance import make_experiment

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(postgres_server: str) -> Iterator[tuple[str, str]]:
    """(name, URL) of a database of its own, dropped afterwards."""
    name = f"dspex_reconnect_{uuid.uuid4().hex[:8]}"
    with _admin(postgres_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield name, f"{base}/{name}"
    finally:
        with _admin(postgres_server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _kill_sessions(postgres_server: str, name: str) -> int:
    with _admin(postgres_server) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def _running(store: ResultStore):
    experiment = make_experiment(trials=3)
    store.start_experiment(
        experiment.replace(status="running", trials=(), best_trial_id=None, summary=None)
    )
    store.record_trial(experiment.id, experiment.trials[0])
    return experiment


def test_after_the_server_killed_the_connections_the_next_write_works(postgres_server, database):
    name, url = database
    store = ResultStore.open(url, auto_migrate=True).connect()
    experiment = _running(store)
    assert _kill_sessions(postgres_server, name) >= 1
    store.record_trial(experiment.id, experiment.trials[1])
    store.append_events(experiment.id, experiment.trials[2].id, 0, experiment.trials[2].events)
    assert _kill_sessions(postgres_server, name) >= 1
    assert store.archive_experiment(experiment) == experiment.content_checksum()
    assert store.get_experiment(experiment.id) == experiment


def test_a_database_made_read_only_and_writable_again(postgres_server, database):
    name, url = database
    store = ResultStore.open(url, auto_migrate=True).connect()
    experiment = _running(store)
    with _admin(postgres_server) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    _kill_sessions(postgres_server, name)  # new sessions are read-only
    for _ in range(2):
        with pytest.raises(StoreUnavailable, match="read-only") as failed:
            store.record_trial(experiment.id, experiment.trials[1])
        assert name in str(failed.value)
    assert store.get_experiment(experiment.id).trials == experiment.trials[:1]  # reads work
    with _admin(postgres_server) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
    # the sessions opened while it was read-only are gone: the next write works
    store.record_trial(experiment.id, experiment.trials[1])
    assert store.archive_experiment(experiment) == experiment.content_checksum()
    assert store.verify() == []


def test_a_database_dropped_and_re_created_is_migrated_again(postgres_server, database):
    name, url = database
    store = ResultStore.open(url, auto_migrate=True).connect()
    experiment = _running(store)
    with _admin(postgres_server) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    with pytest.raises(StoreUnavailable, match=name):
        store.record_trial(experiment.id, experiment.trials[1])
    with _admin(postgres_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    # the new database is empty: the running header went with the old one ...
    with pytest.raises(ExperimentNotFound):
        store.record_trial(experiment.id, experiment.trials[1])
    # ... and the next writes work: migrated again, nothing else to do
    assert store.archive_experiment(experiment) == experiment.content_checksum()
    assert store.get_experiment(experiment.id) == experiment
    assert store.query_experiments()[0].id == experiment.id
