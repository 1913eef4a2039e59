"""Behaviour every adapter shares: results, initializers, errors, faults, names, shutdown."""

from __future__ import annotations

import os
import threading
import time

import pytest

from dspex.errors import WorkerCrashed, WorkerError, WorkerStartupError, WorkerTimeout
from dspex.workers import TaskOutcome
from tests.workers import helpers
from tests.workers.conftest import ADAPTERS

WITH_INLINE = [*ADAPTERS, "inline"]


def wait_until_busy(pool, count: int) -> None:
    """Wait until ``count`` workers hold an item (the pool's own view)."""
    from dspex.workers._core import WorkerState

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        busy = [w for w in list(pool._workers.values()) if w.state is WorkerState.BUSY]
        if len(busy) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} workers never became busy")


def by_index(outcomes: list[TaskOutcome]) -> dict[int, TaskOutcome]:
    indices = [o.index for o in outcomes]
    assert len(indices) == len(set(indices)), f"an item was reported twice: {indices}"
    return {o.index: o for o in outcomes}


@pytest.mark.parametrize("adapter", WITH_INLINE)
def test_every_item_comes_back_once_with_its_value(make_pool, adapter):
    pool = make_pool(adapter, size=3)
    outcomes = by_index(list(pool.map(helpers.square, range(25))))
    assert sorted(outcomes) == list(range(25))
    assert all(o.ok for o in outcomes.values())
    assert {i: o.value for i, o in outcomes.items()} == {i: i * i for i in range(25)}


@pytest.mark.parametrize("adapter", WITH_INLINE)
def test_initializer_runs_once_per_worker_and_fn_sees_its_state(make_pool, adapter):
    pool = make_pool(adapter, size=2, initializer=helpers.remember, initargs=("tag-42",))
    outcomes = list(pool.map(helpers.recall, range(12)))
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    for o in outcomes:
        tag, calls, worker, _ = o.value
        assert (tag, calls, worker) == ("tag-42", 1, o.worker)
    expected_workers = 1 if adapter == "inline" else 2
    assert len({o.worker for o in outcomes}) <= expected_workers


def test_thread_initializer_runs_exactly_pool_size_times(make_pool):
    before = len(helpers.init_calls)
    make_pool("thread", size=3, initializer=helpers.remember, initargs=("t",))
    assert sorted(helpers.init_calls[before:]) == ["worker-1", "worker-2", "worker-3"]


@pytest.mark.parametrize("adapter", WITH_INLINE)
def test_exceptions_come_back_with_the_remote_traceback(make_pool, adapter):
    pool = make_pool(adapter)
    outcomes = by_index(list(pool.map(helpers.fail_on_three, range(6))))
    bad = outcomes[3]
    assert not bad.ok and bad.failure is None
    assert bad.error is not None
    assert bad.error.type == "builtins.ValueError"
    assert bad.error.message == "item 3 is bad"
    assert "fail_on_three" in bad.error.traceback and "helpers.py" in bad.error.traceback
    assert isinstance(bad.exception, ValueError) and str(bad.exception) == "item 3 is bad"
    assert [outcomes[i].value for i in (0, 1, 2, 4, 5)] == [0, 1, 2, 4, 5]


@pytest.mark.parametrize("adapter", ["process", pytest.param("ray", marks=pytest.mark.ray)])
def test_an_exception_that_cannot_travel_still_reports_its_error(make_pool, adapter):
    pool = make_pool(adapter, size=1)
    [outcome] = list(pool.map(helpers.raise_unpicklable, [7]))
    assert outcome.error is not None and outcome.error.message == "no pickling 7"
    assert outcome.error.type.endswith("UnpicklableError")
    assert outcome.exception is None


@pytest.mark.parametrize("adapter", WITH_INLINE)
def test_outcomes_and_current_worker_name_the_worker_and_its_pid(make_pool, adapter):
    pool = make_pool(adapter, size=2)
    outcomes = list(pool.map(helpers.whoami, range(8)))
    for o in outcomes:
        name, pid, real_pid = o.value
        assert (name, pid) == (o.worker, o.pid)
        assert pid == real_pid
    names = {o.worker for o in outcomes}
    if adapter == "inline":
        assert names == {"inline"}
    else:
        assert names <= {"worker-1", "worker-2"}
    pids = {o.pid for o in outcomes}
    if adapter in ("thread", "inline"):
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids


CRASHES = [
    ("thread", "systemexit", "SystemExit"),
    ("thread", "keyboardinterrupt", "KeyboardInterrupt"),
    ("process", "exit", "exited with code 3"),
    ("process", "sigkill", "signal SIGKILL"),
    ("process", "segfault", "signal SIGSEGV"),
    pytest.param("ray", "exit", "died", marks=pytest.mark.ray),
    pytest.param("ray", "sigkill", "died", marks=pytest.mark.ray),
    pytest.param("ray", "segfault", "died", marks=pytest.mark.ray),
]


@pytest.mark.parametrize(("adapter", "mode", "cause"), CRASHES)
def test_a_worker_that_dies_is_replaced_and_the_run_goes_on(make_pool, adapter, mode, cause):
    pool = make_pool(adapter, size=2)
    items = ["a", "b", mode, "c", "d", "e"]
    outcomes = by_index(list(pool.map(helpers.crash, items)))
    assert sorted(outcomes) == list(range(6))
    crashed = outcomes[2]
    assert crashed.failure == "crashed" and not crashed.ok
    assert crashed.worker and crashed.pid
    assert crashed.error is not None and cause in crashed.error.message
    assert crashed.worker in crashed.error.message and "item 2" in crashed.error.message
    assert isinstance(crashed.exception, WorkerCrashed)
    assert [outcomes[i].value for i in (0, 1, 3, 4, 5)] == ["a", "b", "c", "d", "e"]
    live = [name for name, _ in pool.workers()]
    assert len(live) == 2 and crashed.worker not in live
    # the replacement takes work too
    assert all(o.ok for o in pool.map(helpers.square, range(4)))


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_item_past_task_timeout_is_reported_and_its_worker_replaced(make_pool, adapter):
    pool = make_pool(adapter, size=2, task_timeout=1.0)
    started = time.monotonic()
    outcomes = by_index(list(pool.map(helpers.nap, [0.0, 30.0, 0.0, 0.1, 0.0])))
    assert time.monotonic() - started < 15
    late = outcomes[1]
    assert late.failure == "timeout" and late.worker
    assert isinstance(late.exception, WorkerTimeout)
    assert late.error is not None and "task_timeout" in late.error.message
    assert all(outcomes[i].ok for i in (0, 2, 3, 4))
    live = [name for name, _ in pool.workers()]
    assert len(live) == 2 and late.worker not in live


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_map_task_timeout_argument_overrides_the_setting(make_pool, adapter):
    pool = make_pool(adapter, size=1, task_timeout=0.5)
    [outcome] = list(pool.map(helpers.nap, [1.5], task_timeout=None))
    assert outcome.ok and outcome.value == 1.5


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_initializer_slower_than_worker_init_timeout_fails_start_naming_workers(
    make_pool, adapter
):
    pool = make_pool(
        adapter,
        size=2,
        initializer=helpers.sleepy_init,
        initargs=(30.0,),
        start=False,
        worker_init_timeout=1.5,
    )
    started = time.monotonic()
    with pytest.raises(WorkerStartupError) as caught:
        pool.start()
    assert time.monotonic() - started < 10
    assert set(caught.value.workers) == {"worker-1", "worker-2"}
    assert "worker-1" in str(caught.value) and "worker_init_timeout" in str(caught.value)
    with pytest.raises(WorkerError, match="shut down"):
        pool.map(helpers.square, [1])


@pytest.mark.parametrize("adapter", WITH_INLINE)
def test_an_initializer_that_raises_fails_start_with_its_error(make_pool, adapter):
    pool = make_pool(adapter, size=2, initializer=helpers.failing_init, start=False)
    with pytest.raises(WorkerStartupError, match="cannot load the program") as caught:
        pool.start()
    assert caught.value.workers


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_shutdown_with_work_in_flight_lets_it_finish_and_reports_nothing_twice(make_pool, adapter):
    pool = make_pool(adapter, size=2)
    seen: list[TaskOutcome] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            seen.extend(pool.map(helpers.nap, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]))
        except WorkerError as exc:
            errors.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    wait_until_busy(pool, 2)  # items 0 and 1 are running
    pool.shutdown(grace=5.0)
    consumer.join(10)
    assert not consumer.is_alive()
    outcomes = by_index(seen)
    assert sorted(outcomes) == [0, 1]
    assert all(o.ok for o in outcomes.values())
    assert len(errors) == 1 and "4 of 6 items" in str(errors[0])
    pool.shutdown()  # a second time is harmless


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_shutdown_kills_workers_that_outlive_the_grace_period(make_pool, adapter):
    pool = make_pool(adapter, size=2)
    seen: list[TaskOutcome] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            seen.extend(pool.map(helpers.nap, [30.0, 30.0, 0.0]))
        except WorkerError as exc:
            errors.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    wait_until_busy(pool, 2)
    started = time.monotonic()
    pool.shutdown(grace=0.3)
    assert time.monotonic() - started < 5
    consumer.join(10)
    assert seen == [] and len(errors) == 1


@pytest.mark.parametrize("adapter", WITH_INLINE)
def test_pool_lifecycle_is_enforced(make_pool, adapter):
    pool = make_pool(adapter, start=False)
    with pytest.raises(WorkerError, match="start"):
        pool.map(helpers.square, [1])
    pool.start()
    with pytest.raises(WorkerError, match="already started"):
        pool.start()
    pool.shutdown()
    pool.shutdown()
    with pytest.raises(WorkerError):
        pool.map(helpers.square, [1])


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_context_manager_starts_and_stops(make_pool, adapter):
    pool = make_pool(adapter, size=1, start=False)
    with pool as running:
        assert [o.value for o in running.map(helpers.square, [3])] == [9]
    assert pool.workers() == []


@pytest.mark.parametrize("adapter", WITH_INLINE)
def test_no_items_no_outcomes(make_pool, adapter):
    pool = make_pool(adapter, size=1)
    assert list(pool.map(helpers.square, [])) == []


def test_a_function_that_cannot_be_pickled_fails_every_item_but_not_the_pool(make_pool):
    pool = make_pool("process", size=1)
    lock = threading.Lock()
    outcomes = list(pool.map(lambda x: (lock, x), [1, 2]))
    assert [o.failure for o in outcomes] == [None, None]
    assert all(o.error is not None and "lock" in o.error.message.lower() for o in outcomes)
    assert [o.value for o in pool.map(helpers.square, [5])] == [25]


@pytest.mark.parametrize("adapter", ["process", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_dspy_program_travels_and_runs_under_the_workers_configured_lm(make_pool, adapter):
    import dspy

    program = dspy.Predict("question -> answer")  # a string signature: plain pickle fails

    def run(question: str) -> tuple[str, str]:
        return program(question=question).answer, helpers.current_worker().name

    pool = make_pool(
        adapter, size=2, initializer=helpers.configure_dummy_lm, initargs=("forty-two",)
    )
    outcomes = list(pool.map(run, ["a", "b", "c", "d"]))
    assert [o.error for o in outcomes] == [None] * 4
    assert all(o.value == ("forty-two", o.worker) for o in outcomes)


@pytest.mark.parametrize("adapter", ["process", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_worker_killed_from_outside_while_busy_reports_its_item_crashed(make_pool, adapter):
    import signal

    pool = make_pool(adapter, size=1)
    [(name, pid)] = pool.workers()
    outcomes: list[TaskOutcome] = []
    consumer = threading.Thread(target=lambda: outcomes.extend(pool.map(helpers.nap, [30.0, 0.0])))
    consumer.start()
    wait_until_busy(pool, 1)
    os.kill(pid, signal.SIGKILL)
    consumer.join(30)
    result = by_index(outcomes)
    assert result[0].failure == "crashed" and result[0].worker == name
    assert result[1].ok and result[1].worker != name
