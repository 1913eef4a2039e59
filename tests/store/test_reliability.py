"""Crashes and concurrent processes: nothing half-written is visible, nothing archived is lost.

Children are forked (the store is opened in the child), so each starts in milliseconds.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

import pytest

from dspex import Experiment, ExperimentNotFound, ResultStore
from tests.store.test_conformance import make_experiment, make_trial

KILLS = 50


def _fork(work: Callable[[int], None]) -> tuple[int, int]:
    """Run ``work(write_fd)`` in a forked child; return (pid, read end of its pipe)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        status = 1
        try:
            os.close(read_fd)
            work(write_fd)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    return pid, read_fd


def _read_all(fd: int) -> list[str]:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode().splitlines()


def _big_experiment(status: str = "completed", trials: int = 4) -> Experiment:
    experiment = make_experiment(status=status, trials=0)
    made = tuple(make_trial(experiment.id, i, 0.1 * i, events=40) for i in range(trials))
    return experiment.replace(trials=made, best_trial_id=made[-1].id)


def _archive_forever(url: str) -> Callable[[int], None]:
    def work(fd: int) -> None:
        store = ResultStore.open(url).connect()
        while True:
            final = _big_experiment()
            running = final.replace(status="running", trials=(), best_trial_id=None)
            store.start_experiment(running)
            for trial in final.trials[:2]:
                store.record_trial(final.id, trial)
                os.write(fd, f"trial {final.id} {trial.id}\n".encode())
            checksum = store.archive_experiment(final)
            os.write(fd, f"sealed {final.id} {checksum}\n".encode())

    return work


@pytest.mark.parametrize("backend", ["file", "sqlite"])
def test_killing_a_writer_at_random_points_loses_nothing_archived(store_url_factory):
    url = store_url_factory()
    ResultStore.open(url).connect().close()
    rng = random.Random(20261126)
    sealed: dict[str, str] = {}
    trials: dict[str, set[str]] = {}
    for _ in range(KILLS):
        pid, fd = _fork(_archive_forever(url))
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        for line in _read_all(fd):
            kind, experiment_id, value = line.split()
            if kind == "sealed":
                sealed[experiment_id] = value
            else:
                trials.setdefault(experiment_id, set()).add(value)
    assert len(sealed) >= 10, "the writer should have archived some experiments"

    store = ResultStore.open(url).connect()
    assert store.verify() == []
    for experiment_id, checksum in sealed.items():
        assert store.get_experiment(experiment_id).content_checksum() == checksum
    for experiment_id, recorded in trials.items():  # a crash loses at most the unfinished trial
        assert recorded <= {t.id for t in store.get_experiment(experiment_id).trials}
    visible = list(store.query_experiments(limit=1000))
    assert len(visible) == store.count_experiments() >= len(sealed)
    for summary in visible:  # everything a query shows reads back whole
        experiment = store.get_experiment(summary.id)
        if summary.sealed:
            assert experiment.content_checksum() == summary.checksum
        else:
            assert len(experiment.trials) == summary.trial_count
    store.close()


def _archive_batch(url: str, worker: int, shared: list[Experiment]) -> Callable[[int], None]:
    def work(fd: int) -> None:
        store = ResultStore.open(url).connect()
        for i in range(100):
            experiment = make_experiment(trials=1, name=f"w{worker}-{i}")
            store.archive_experiment(experiment)
            if i % 10 == 0:
                store.archive_experiment(shared[i // 10])
        os.write(fd, b"done\n")

    return work


@pytest.mark.parametrize(
    "backend", ["file", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_four_processes_archiving_at_once(store_url_factory):
    url = store_url_factory()
    shared = [make_experiment(trials=2, name=f"shared-{i}") for i in range(10)]
    children = [_fork(_archive_batch(url, worker, shared)) for worker in range(4)]
    for pid, fd in children:
        assert _read_all(fd) == ["done"]
        assert os.waitpid(pid, 0)[1] == 0
    store = ResultStore.open(url).connect()
    summaries = list(store.query_experiments(limit=1000))
    ids = [s.id for s in summaries]
    assert len(ids) == len(set(ids)) == store.count_experiments() == 410
    names = sorted(s.name for s in summaries if not s.name.startswith("shared"))
    assert names == sorted(f"w{w}-{i}" for w in range(4) for i in range(100))
    for experiment in shared:
        assert store.get_experiment(experiment.id) == experiment
    for summary in summaries:
        assert store.get_experiment(summary.id).content_checksum() == summary.checksum
    with pytest.raises(ExperimentNotFound):
        store.get_experiment(make_experiment().id)
    store.close()
