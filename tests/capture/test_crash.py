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
    import signal
    # A process started in the background by a non-interactive shell inherits SIGINT as
    # ignored; this child must see Ctrl-C however the test run was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)

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


def _run_until(
    url: str, finished_wanted: int, sig: int, stderr: Path
) -> tuple[str, list[str], str]:
    """Run the child until it reported ``finished_wanted`` trials, send ``sig``; return the
    experiment id, the trials it reported finished, and what it wrote to stderr."""
    with open(stderr, "w") as errors:  # a file, not a pipe: a full pipe would block the child
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=_child_env(),
        )
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first, f"the child ended at once:\n{stderr.read_text()}"
        experiment_id = first.split()[1]
        finished: list[str] = []
        while len(finished) < finished_wanted:
            line = child.stdout.readline()
            assert line, f"the child ended before it was killed:\n{stderr.read_text()}"
            finished.append(line.split()[1])
        time.sleep(random.uniform(0, 0.05))  # somewhere inside the next trial, or between two
        child.send_signal(sig)
        child.wait(timeout=60)
        finished += [line.split()[1] for line in child.stdout.read().splitlines()]  # printed
    return experiment_id, finished, stderr.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["file", "sqlite"])
def test_sigkill_loses_only_unfinished_trials(tmp_path, scheme):
    url = f"file://{tmp_path}/store" if scheme == "file" else f"sqlite:///{tmp_path}/store.db"
    rng = random.Random(7)
    for _ in range(6):
        experiment_id, finished, _ = _run_until(
            url, rng.randint(1, 6), signal.SIGKILL, tmp_path / "child.err"
        )
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
    experiment_id, finished, errors = _run_until(url, 3, signal.SIGINT, tmp_path / "child.err")
    experiment = ResultStore.open(url).get_experiment(experiment_id)
    assert experiment.status is ExperimentStatus.INTERRUPTED, errors
    assert "KeyboardInterrupt" in errors  # the interrupt reached the program, and was raised
    ok = [t.id for t in experiment.trials if t.status.value == "ok"]
    assert ok[: len(finished)] == finished
    assert ResultStore.open(url).verify() == []
