"""The process adapter: python_path, a worker that never answers, stdout, serialization."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from dspex.errors import WorkerStartupError
from dspex.workers.process import describe_exit, worker_environment
from tests.workers import helpers


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_python_path_is_the_interpreter_that_runs_the_workers(make_pool, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    wrapper = script(
        tmp_path / "python-wrapper",
        f'echo started > "{markers}/$$"\nexec "{sys.executable}" "$@"\n',
    )
    pool = make_pool("process", size=2, python_path=wrapper)
    outcomes = list(pool.map(helpers.whoami, range(6)))
    assert all(o.ok for o in outcomes)
    # the wrapper execs, so each marker is named after a worker's pid
    assert {int(p.name) for p in markers.iterdir()} == {pid for _, pid in pool.workers()}
    assert {o.pid for o in outcomes} <= {pid for _, pid in pool.workers()}


def test_a_wrapper_that_forks_still_reports_the_interpreters_pid(make_pool, tmp_path):
    wrapper = script(tmp_path / "forking-wrapper", f'"{sys.executable}" "$@"\n')
    pool = make_pool("process", size=1, python_path=wrapper)
    [outcome] = list(pool.map(helpers.whoami, [0]))
    assert outcome.pid == outcome.value[2]


def test_a_python_path_that_never_answers_fails_start_naming_every_worker(make_pool, tmp_path):
    silent = script(tmp_path / "silent-python", "exec sleep 60\n")
    pool = make_pool("process", size=2, start=False, python_path=silent, pool_startup_timeout=1.5)
    with pytest.raises(WorkerStartupError, match="pool_startup_timeout") as caught:
        pool.start()
    assert set(caught.value.workers) == {"worker-1", "worker-2"}


def test_a_python_path_that_does_not_exist_fails_start(make_pool, tmp_path):
    pool = make_pool("process", size=1, start=False, python_path=str(tmp_path / "nope"))
    with pytest.raises(WorkerStartupError, match="could not be started") as caught:
        pool.start()
    assert caught.value.workers == ("worker-1",)


def test_what_fn_prints_does_not_corrupt_the_protocol(make_pool):
    pool = make_pool("process", size=1)
    assert sorted(o.value for o in pool.map(helpers.chatty, range(5))) == [1, 2, 3, 4, 5]


def test_an_item_that_cannot_be_pickled_fails_alone(make_pool):
    pool = make_pool("process", size=1)
    outcomes = {o.index: o for o in pool.map(helpers.square, [2, threading.Lock(), 3])}
    assert outcomes[0].value == 4 and outcomes[2].value == 9
    assert outcomes[1].error is not None and outcomes[1].failure is None
    assert "lock" in outcomes[1].error.message.lower()


def test_a_result_that_cannot_be_pickled_is_an_error(make_pool):
    pool = make_pool("process", size=1)
    [outcome] = list(pool.map(lambda _: threading.Lock(), [0]))
    assert outcome.error is not None and "could not be pickled" in outcome.error.message


def test_lambdas_and_closures_travel(make_pool):
    offset = 10
    pool = make_pool("process", size=2)
    assert sorted(o.value for o in pool.map(lambda x: x + offset, range(3))) == [10, 11, 12]


def test_workers_find_this_dspex_first():
    import dspex

    src = str(Path(dspex.__file__).resolve().parents[1])
    assert worker_environment()["PYTHONPATH"].split(os.pathsep)[0] == src


@pytest.mark.parametrize(
    ("code", "text"), [(3, "exited with code 3"), (-9, "killed by signal SIGKILL")]
)
def test_exit_codes_are_described(code, text):
    assert describe_exit(code) == ("was " + text if code < 0 else text)


def test_a_worker_killed_while_idle_is_replaced_without_failing_an_item(make_pool):
    import signal
    import time

    pool = make_pool("process", size=2)
    victim_name, victim_pid = pool.workers()[0]
    os.kill(victim_pid, signal.SIGKILL)
    time.sleep(0.5)  # its death is now waiting in the pool's queue
    outcomes = list(pool.map(helpers.square, range(6)))
    assert all(o.ok for o in outcomes)
    assert victim_name not in [name for name, _ in pool.workers()]
    assert len(pool.workers()) == 2
