"""The store fails in the middle of a SIMBA run: the run goes on, nothing is lost.

Each fault strikes while SIMBA runs (at a given metric call) and is lifted later or never;
after the block (and ``dspex store recover`` when the block could not seal), the store
holds the experiment exactly as recorded: every trial, every event, once; ``store verify``
is clean; the LM calls recorded are the engine's count.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dspy
import pytest
from click.testing import CliRunner

import dspex
from dspex import ResultStore
from dspex.cli import main
from dspex.model import Experiment
from dspex.offline import ArithQA, exact_match, load_arith, offline_lm


def _admin(url: str):
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


@pytest.fixture
def database(postgres_server: str) -> Iterator[tuple[str, str]]:
    """(admin URL, URL) of a database made for this test."""
    name = f"dspex_fault_{uuid.uuid4().hex[:10]}"
    with _admin(postgres_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield postgres_server, f"{base}/{name}"
    finally:
        with _admin(postgres_server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Fault:
    """Strikes at metric call ``at``, lifted at call ``until`` (never when None)."""

    def __init__(
        self,
        strike: Callable[[], None],
        lift: Callable[[], None] | None,
        at: int,
        until: int | None,
    ) -> None:
        self.strike, self.lift, self.at, self.until = strike, lift, at, until
        self.calls = 0
        self._lock = threading.Lock()

    def metric(self, example, prediction, trace=None):
        with self._lock:
            self.calls += 1
            if self.calls == self.at:
                self.strike()
            if self.until is not None and self.calls == self.until and self.lift:
                self.lift()
        return exact_match(example, prediction, trace)


def _terminate(conn, name: str) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )


def _run_simba(
    store: ResultStore, fault: Fault, spool_dir: Path
) -> tuple[Experiment, int, str | None]:
    train, _ = load_arith()
    lm = offline_lm()
    with dspy.context(lm=lm), dspex.experiment("faulty", store=store) as exp:
        optimizer = dspy.SIMBA(
            metric=fault.metric, bsize=4, num_candidates=2, max_steps=3, max_demos=2
        )
        optimizer.compile(ArithQA(), trainset=train[:8], seed=3)
    return (
        exp.experiment,
        lm.engine.calls if hasattr(lm, "engine") else -1,
        exp.journal.unsaved_spool,
    )


def _check_saved(url: str, recorded: Experiment, engine_calls: int, unsaved: str | None) -> str:
    """Recover when the block could not seal; then the store holds ``recorded``."""
    how = "sealed by the block"
    if unsaved is not None:
        result = CliRunner().invoke(main, ["store", "recover", "--store", url, unsaved])
        assert result.exit_code == 0, result.output
        assert not Path(unsaved).exists()
        how = "sealed by dspex store recover"
    store = ResultStore.open(url)
    stored = store.get_experiment(recorded.id)
    assert [t.id for t in stored.trials] == [t.id for t in recorded.trials]
    assert [len(t.events) for t in stored.trials] == [len(t.events) for t in recorded.trials]
    assert stored.content_checksum() == recorded.content_checksum(), how
    events = [e.id for t in stored.trials for e in t.events]
    assert len(events) == len(set(events))
    responses = sum(
        len(e.payload.get("response") or [None])
        for t in stored.trials
        for e in t.events
        if e.kind.value == "lm_call"
    )
    assert responses == engine_calls > 0
    assert store.verify() == []
    store.close()
    return how


@pytest.mark.postgres
@pytest.mark.parametrize("lifted", [True, False], ids=["lifted", "until-the-end"])
def test_postgres_made_read_only(database, spool_dir, lifted, capsys):
    admin, url = database
    name = url.rsplit("/", 1)[1]

    def strike() -> None:
        with _admin(admin) as conn:
            conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            _terminate(conn, name)

    def lift() -> None:
        with _admin(admin) as conn:
            conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')

    fault = Fault(strike, lift, at=6, until=30 if lifted else None)
    recorded, calls, unsaved = _run_simba(ResultStore.open(url), fault, spool_dir)
    if not lifted:
        err = capsys.readouterr().err
        assert unsaved is not None and f"dspex store recover --store {url}" in err
        assert "Traceback" not in err
        lift()
    _check_saved(url, recorded, calls, unsaved)


@pytest.mark.postgres
def test_postgres_database_dropped_and_recreated(database, spool_dir):
    admin, url = database
    name = url.rsplit("/", 1)[1]

    def strike() -> None:
        with _admin(admin) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    def lift() -> None:
        with _admin(admin) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    fault = Fault(strike, lift, at=6, until=30)
    recorded, calls, unsaved = _run_simba(ResultStore.open(url), fault, spool_dir)
    _check_saved(url, recorded, calls, unsaved)


@pytest.mark.postgres
def test_postgres_connections_killed(database, spool_dir):
    admin, url = database
    name = url.rsplit("/", 1)[1]

    def strike() -> None:
        with _admin(admin) as conn:
            _terminate(conn, name)

    fault = Fault(strike, None, at=6, until=None)
    recorded, calls, unsaved = _run_simba(ResultStore.open(url), fault, spool_dir)
    _check_saved(url, recorded, calls, unsaved)


DISK_FULL_CHILD = textwrap.dedent(
    """
    import resource, sys, dspy, dspex
    from dspex import ResultStore
    from dspex.offline import ArithQA, exact_match, load_arith, offline_lm

    url, spool, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dspex.configure(journal={"spool_dir": spool})
    train, _ = load_arith()
    lm = offline_lm()
    calls = [0]

    def metric(example, prediction, trace=None):
        calls[0] += 1
        if calls[0] == 6:  # the disk fills up in the middle of the run
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        return exact_match(example, prediction, trace)

    with dspy.context(lm=lm), dspex.experiment("disk-full", store=ResultStore.open(url)) as exp:
        dspy.SIMBA(metric=metric, bsize=4, num_candidates=2, max_steps=3, max_demos=2).compile(
            ArithQA(), trainset=train[:8], seed=3
        )
    print("id", exp.id, lm.engine.calls, exp.journal.unsaved_spool)
    print("recorded", exp.experiment.content_checksum(), len(exp.experiment.trials))
    """
)


def test_disk_full_under_the_file_store(tmp_path, spool_dir):
    """RLIMIT_FSIZE in a child process (Python ignores SIGXFSZ: writes fail with EFBIG):
    the file store's bigger writes fail, the compressed spool's do not."""
    url = f"file://{tmp_path / 'store'}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.run(
        [sys.executable, "-c", DISK_FULL_CHILD, url, str(spool_dir), str(48 * 1024)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr
    assert "Traceback" not in child.stderr
    lines = dict(line.split(" ", 1) for line in child.stdout.splitlines())
    experiment_id, calls, unsaved = lines["id"].split()
    checksum, trials = lines["recorded"].split()
    assert unsaved != "None", child.stderr  # the seal did not fit
    assert f"dspex store recover --store {url} {unsaved}" in child.stderr
    assert "File too large" in child.stderr
    result = CliRunner().invoke(main, ["store", "recover", "--store", url, unsaved])
    assert result.exit_code == 0, result.output
    store = ResultStore.open(url)
    stored = store.get_experiment(experiment_id)
    assert len(stored.trials) == int(trials)
    assert stored.content_checksum() == checksum
    responses = sum(
        len(e.payload.get("response") or [None])
        for t in stored.trials
        for e in t.events
        if e.kind.value == "lm_call"
    )
    assert responses == int(calls)
    assert store.verify() == []
