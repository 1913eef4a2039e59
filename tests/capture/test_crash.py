"""A recording process killed mid-run: finished trials survive, nothing is half-written."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import dspex
from dspex import ExperimentStatus, ResultStore

CHILD = textwrap.dedent(
    """
    import sys, dspy, dspex
    from dspex.offline import exact_match, load_arith

    store = dspex.ResultStore.open(sys.argv[1])
    _, dev = load_arith()
    program = dspy.Predict("question -> answer")
    with dspy.context(lm=dspex.offline_lm()):
        with dspex.experiment("crash", program=program, store=store, pool_size=2) as exp:
            print("experiment", exp.id, flush=True)
            for i in range(200):
                trial = exp.evaluate(program, dev[i % 5 : i % 5 + 4], exact_match, name=f"t{i}")
                print("finished", trial.id, flush=True)
    """
)


def _child_env() -> dict[str, str]:
    src = str(Path(dspex.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def _run_until(url: str, finished_wanted: int, sig: int) -> tuple[str, list[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_child_env(),
    )
    assert child.stdout is not None
    experiment_id = child.stdout.readline().split()[1]
    finished: list[str] = []
    while len(finished) < finished_wanted:
        line = child.stdout.readline()
        assert line, "the child ended before it was killed"
        finished.append(line.split()[1])
    time.sleep(random.uniform(0, 0.05))  # somewhere inside the next trial, or between two
    child.send_signal(sig)
    child.wait(timeout=60)
    finished += [line.split()[1] for line in child.stdout.read().splitlines()]  # printed before
    return experiment_id, finished


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["file", "sqlite"])
def test_sigkill_loses_only_unfinished_trials(tmp_path, scheme):
    url = f"file://{tmp_path}/store" if scheme == "file" else f"sqlite:///{tmp_path}/store.db"
    rng = random.Random(7)
    for _ in range(6):
        experiment_id, finished = _run_until(url, rng.randint(1, 6), signal.SIGKILL)
        experiment = ResultStore.open(url).get_experiment(experiment_id)
        assert experiment.status is ExperimentStatus.RUNNING  # never sealed, never half-sealed
        stored = [t.id for t in experiment.trials]
        # Every trial reported finished is stored; at most one more (finished, killed
        # before it was reported); nothing half-written.
        assert stored[: len(finished)] == finished
        assert len(finished) <= len(stored) <= len(finished) + 1
        for trial in experiment.trials:
            assert trial.finished_at is not None and len(trial.example_results) == 4
            assert [e.sequence for e in trial.events] == list(range(len(trial.events)))


@pytest.mark.slow
def test_ctrl_c_marks_the_experiment_interrupted_and_archives_it(tmp_path):
    url = f"file://{tmp_path}/store"
    experiment_id, finished = _run_until(url, 3, signal.SIGINT)
    experiment = ResultStore.open(url).get_experiment(experiment_id)
    assert experiment.status is ExperimentStatus.INTERRUPTED
    ok = [t.id for t in experiment.trials if t.status.value == "ok"]
    assert ok[: len(finished)] == finished
    assert ResultStore.open(url).verify() == []
