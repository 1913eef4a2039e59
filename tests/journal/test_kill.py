"""SIGKILL at random points of a SIMBA run: every event older than the spool's bound is in
the store after ``dspex store recover``, in an ``interrupted`` trial, nothing twice."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dspex import ResultStore
from dspex.cli import main
from dspex.model import ExperimentStatus, TrialStatus

CHILD = Path(__file__).with_name("child.py")
FLUSH_INTERVAL = 0.1  # journal.flush_interval's default, the stated bound
SCHEDULING = 0.15  # what a loaded 2-core machine may add before the flusher runs


def _kill_once(
    tmp_path: Path, rng: random.Random, number: int, mode: tuple[str, ...] = ()
) -> dict[str, float]:
    store_url = f"file://{tmp_path / 'store'}"
    spool = tmp_path / "spool"
    log = tmp_path / f"lm-{number}.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), store_url, str(spool), str(log), *mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("started "), (line, child.stderr and child.stderr.read())
        experiment_id = line.split()[1]
        _wait_for_first_call(log, child)  # a loaded machine may take seconds to get there
        time.sleep(rng.uniform(0.2, 4.0))
        if number == 0:  # a live process's spool is left alone
            live = CliRunner().invoke(main, ["store", "recover", str(spool / experiment_id)])
            assert live.exit_code == 0 and "skipped" in live.output, live.output
        killed_at = time.time_ns()
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert (spool / experiment_id).is_dir()

    copy = tmp_path / f"copy-{number}"
    shutil.copytree(spool / experiment_id, copy)
    result = CliRunner().invoke(main, ["store", "recover", str(spool / experiment_id)])
    assert result.exit_code == 0, result.output
    assert f"saved {experiment_id}" in result.output
    assert not (spool / experiment_id).exists()
    first = ResultStore.open(store_url, read_only=True).get_experiment(experiment_id)
    # the same spool again (a recovery that died before deleting it): nothing changes
    again = CliRunner().invoke(main, ["store", "recover", str(copy)])
    assert again.exit_code == 0 and "already sealed" in again.output, again.output
    assert ResultStore.open(store_url, read_only=True).get_experiment(experiment_id) == first

    store = ResultStore.open(store_url, read_only=True)
    experiment = store.get_experiment(experiment_id)
    assert experiment.status is ExperimentStatus.INTERRUPTED
    events = [e for t in experiment.trials for e in t.events]
    assert len({e.id for e in events}) == len(events), "an event recovered twice"
    assert len({t.id for t in experiment.trials}) == len(experiment.trials)
    recorded = sum(
        len(e.payload.get("response") or [None]) for e in events if e.kind.value == "lm_call"
    )
    answered = [int(x) for x in log.read_text().split()]
    bound_ns = int((FLUSH_INTERVAL + SCHEDULING) * 1e9)
    old = [t for t in answered if t < killed_at - bound_ns]
    assert recorded >= len(old), (
        f"kill {number}: {len(old)} LM requests answered more than "
        f"{(FLUSH_INTERVAL + SCHEDULING) * 1000:.0f} ms before the kill, {recorded} recorded"
    )
    running = [t for t in experiment.trials if t.status is TrialStatus.INTERRUPTED]
    lost = sorted(answered)[recorded:] if recorded < len(answered) else []
    return {
        "answered": len(answered),
        "recorded": recorded,
        "interrupted_trials": len(running),
        "oldest_lost_ms": (killed_at - min(lost)) / 1e6 if lost else 0.0,
    }


def _wait_for_first_call(log: Path, child: subprocess.Popen[str]) -> None:
    """Until the run has made an LM call: a kill before it would check nothing."""
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text().split()):
        assert child.poll() is None, "the run ended before its first LM call"
        assert time.monotonic() < deadline, "no LM call within 120 s of the run's start"
        time.sleep(0.02)


def _kills(tmp_path: Path, count: int, seed: int, mode: tuple[str, ...] = ()) -> None:
    rng = random.Random(seed)
    outcomes = [_kill_once(tmp_path, rng, n, mode) for n in range(count)]
    assert all(o["answered"] > 0 for o in outcomes)  # every kill hit a running SIMBA
    assert sum(o["recorded"] for o in outcomes) > 0
    print("\n".join(str(o) for o in outcomes))
    assert ResultStore.open(f"file://{tmp_path / 'store'}", read_only=True).verify() == []


@pytest.mark.timeout(900)
def test_four_kills_lose_only_the_last_flush_interval(tmp_path):
    _kills(tmp_path, 4, seed=19)


@pytest.mark.timeout(900)
def test_kills_of_a_program_that_records_as_fast_as_it_can_lose_only_the_last_interval(
    tmp_path,
):
    """Direct calls one after another in the calling thread: DSPy releases the GIL several
    times a call (``uuid4`` reads ``os.urandom``), which starves a flusher thread waiting
    for it; the recording thread writes the spool itself when a flush is due."""
    _kills(tmp_path, 5, seed=23, mode=("--calls",))


@pytest.mark.long
@pytest.mark.timeout(3600)
def test_fifty_kills_lose_only_the_last_flush_interval(tmp_path):
    _kills(tmp_path, 50, seed=1919)
