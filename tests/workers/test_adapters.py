"""Choosing the adapter, the thread and inline specifics, and current_worker outside pools."""

from __future__ import annotations

import contextvars
import os
import threading
import time

import pytest

import dspex
from dspex.config.schema import WorkersSettings
from dspex.errors import ValidationError
from dspex.workers import WorkerInfo, create_pool, current_worker
from dspex.workers.inline import InlinePool
from dspex.workers.process import ProcessPool
from dspex.workers.ray_pool import RayPool
from dspex.workers.thread import ThreadPool
from tests.workers import helpers


@pytest.mark.parametrize(
    ("adapter", "cls"), [("thread", ThreadPool), ("process", ProcessPool), ("ray", RayPool)]
)
def test_create_pool_follows_the_adapter_setting(adapter, cls):
    pool = create_pool(WorkersSettings(adapter=adapter, pool_size=3))
    assert type(pool) is cls and pool.adapter == adapter and pool.size == 3


def test_create_pool_reads_the_effective_settings_and_size_overrides_them():
    dspex.configure(workers={"adapter": "process", "pool_size": 5})
    assert type(create_pool()) is ProcessPool and create_pool().size == 5
    assert create_pool(size=2).size == 2


def test_pooling_disabled_gives_an_inline_pool_whatever_the_adapter():
    pool = create_pool(WorkersSettings(adapter="ray", pooling_enabled=False, pool_size=8))
    assert type(pool) is InlinePool and pool.size == 1


def test_a_pool_size_below_one_is_refused():
    with pytest.raises(ValidationError, match="pool size"):
        ThreadPool(size=0)


def test_current_worker_outside_any_pool_is_main():
    assert current_worker() == WorkerInfo("main", os.getpid())


marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


def read_marker(_: object) -> str:
    return marker.get()


def test_thread_workers_see_the_context_of_the_thread_that_started_them(make_pool):
    token = marker.set("from-caller")
    try:
        pool = make_pool("thread", size=2)
    finally:
        marker.reset(token)
    assert {o.value for o in pool.map(read_marker, range(4))} == {"from-caller"}


def test_a_timed_out_thread_that_finishes_later_is_not_reported(make_pool):
    pool = make_pool("thread", size=1, task_timeout=0.3)
    outcomes = list(pool.map(helpers.nap, [0.8]))
    assert [o.failure for o in outcomes] == ["timeout"]
    time.sleep(0.8)  # the abandoned thread returns now; its result must be dropped
    later = list(pool.map(helpers.square, [2, 3]))
    assert sorted((o.index, o.value) for o in later) == [(0, 4), (1, 9)]


def test_inline_runs_in_the_calling_thread_one_at_a_time(make_pool):
    pool = make_pool("inline")
    caller = threading.get_ident()
    seen = [o.value for o in pool.map(lambda x: (threading.get_ident(), x), range(3))]
    assert seen == [(caller, 0), (caller, 1), (caller, 2)]


def test_inline_lets_keyboard_interrupt_through(make_pool):
    pool = make_pool("inline")
    with pytest.raises(KeyboardInterrupt):
        list(pool.map(helpers.crash, ["a", "keyboardinterrupt"]))


def test_inline_does_not_enforce_task_timeout(make_pool):
    pool = make_pool("inline", task_timeout=0.1)
    [outcome] = list(pool.map(helpers.nap, [0.3]))
    assert outcome.ok


def test_one_map_at_a_time(make_pool):
    pool = make_pool("thread", size=1)
    first = pool.map(helpers.nap, [0.2, 0.2])
    next(first)
    with pytest.raises(dspex.WorkerError, match="one map at a time"):
        next(pool.map(helpers.square, [1]))
    assert len(list(first)) == 1


def set_marker(value: str) -> None:
    marker.set(value)


def test_thread_initializer_context_variables_are_seen_by_fn(make_pool):
    pool = make_pool("thread", size=2, initializer=set_marker, initargs=("from-initializer",))
    assert {o.value for o in pool.map(read_marker, range(4))} == {"from-initializer"}
    assert marker.get() == "unset"  # the caller's context is untouched


_per_thread = threading.local()


def make_lm(answer: str) -> None:
    import dspy

    _per_thread.lm = dspy.utils.DummyLM([{"answer": answer}] * 10)


def ask(question: str) -> str:
    import dspy

    # dspy.configure may only be called from one thread: thread workers use dspy.context.
    with dspy.context(lm=_per_thread.lm):
        return dspy.Predict("question -> answer")(question=question).answer


def test_thread_workers_can_hold_their_own_dspy_lm(make_pool):
    pool = make_pool("thread", size=2, initializer=make_lm, initargs=("forty-two",))
    outcomes = list(pool.map(ask, ["a", "b", "c"]))
    assert [o.value for o in outcomes] == ["forty-two"] * 3, [o.error for o in outcomes]


# -- a pool of one thread sends its worker the next item ahead ----------------------------


class _Runs:
    """What each item did, recorded by the function the pool runs (in the worker thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.threads: dict[int, str] = {}

    def __call__(self, item: tuple[int, float | str]) -> int:
        index, action = item
        with self.lock:
            self.started.append(index)
            self.threads[index] = threading.current_thread().name
        if action == "exit":
            raise SystemExit(1)  # ends the worker thread: its item is reported crashed
        time.sleep(float(action))
        return index


def test_a_one_thread_pool_runs_every_item_once_in_order_with_the_next_one_sent_ahead(
    make_pool,
):
    pool = make_pool("thread", size=1)
    runs = _Runs()
    outcomes = list(pool.map(runs, [(i, 0.0) for i in range(50)]))
    assert [o.index for o in outcomes] == list(range(50))
    assert all(o.ok and o.value == o.index for o in outcomes)
    assert runs.started == list(range(50))
    assert set(runs.threads.values()) == {"dspex-worker-1"}


def test_an_item_sent_ahead_has_its_own_timeout_clock(make_pool):
    """Sent while the item before it runs, it may wait; its task_timeout counts from
    when it starts: two items of 0.6 s each under a 1 s limit both finish."""
    pool = make_pool("thread", size=1, task_timeout=1.0)
    outcomes = list(pool.map(_Runs(), [(0, 0.6), (1, 0.6)]))
    assert [(o.index, o.ok) for o in outcomes] == [(0, True), (1, True)]


def test_the_item_sent_ahead_of_a_timed_out_one_runs_once_on_the_new_worker(make_pool):
    pool = make_pool("thread", size=1, task_timeout=0.3)
    runs = _Runs()
    outcomes = by_index(pool.map(runs, [(0, 1.0), (1, 0.0), (2, 0.0)]))
    assert outcomes[0].failure == "timeout"
    assert outcomes[1].ok and outcomes[2].ok
    time.sleep(1.0)  # the abandoned thread returns from item 0: it must start nothing more
    assert sorted(runs.started) == [0, 1, 2]
    assert runs.threads[0] == "dspex-worker-1"
    assert runs.threads[1] == runs.threads[2] == "dspex-worker-2"


def test_the_item_sent_ahead_of_a_dying_worker_runs_once_on_the_new_worker(make_pool):
    pool = make_pool("thread", size=1)
    runs = _Runs()
    outcomes = by_index(pool.map(runs, [(0, "exit"), (1, 0.0), (2, 0.0)]))
    assert outcomes[0].failure == "crashed"
    assert outcomes[1].ok and outcomes[2].ok
    assert sorted(runs.started) == [0, 1, 2]
    assert runs.threads[1] == runs.threads[2] == "dspex-worker-2"


def test_a_one_thread_pool_is_not_woken_for_each_item(make_pool):
    """Every item is sent ahead and its result posted quietly: the pool's thread wakes
    every so often and at the end, not once per item (two thread switches each)."""
    pool = make_pool("thread", size=1)
    waits = []
    next_event = pool._next_event

    def counted(wake):
        waits.append(wake)
        return next_event(wake)

    pool._next_event = counted
    runs = _Runs()
    outcomes = list(pool.map(runs, [(i, 0.003) for i in range(100)]))  # 0.3 s or more
    assert [o.index for o in outcomes] == list(range(100)) and all(o.ok for o in outcomes)
    assert runs.started == list(range(100))
    assert len(waits) < 40, f"the pool waited {len(waits)} times for 100 items"


def test_a_one_thread_pool_reports_each_outcome_soon_after_its_item_ends(make_pool):
    pool = make_pool("thread", size=1)
    runs = _Runs()
    outcomes = pool.map(runs, [(i, 0.4) for i in range(4)])
    first = next(outcomes)
    with runs.lock:  # item 0 ended at 0.4 s; item 2 starts at 0.8 s
        started = list(runs.started)
    assert first.index == 0 and first.ok
    assert started in ([0], [0, 1]), f"outcome 0 came only after items {started} started"
    assert [o.index for o in outcomes] == [1, 2, 3]


def test_shutting_down_a_one_thread_pool_reports_the_result_it_posted_quietly(make_pool):
    pool = make_pool("thread", size=1)
    seen = []
    errors = []

    def consume():
        try:
            seen.extend(pool.map(_Runs(), [(i, 0.5) for i in range(6)]))
        except dspex.WorkerError as exc:
            errors.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.2)  # item 0 runs, items 1-5 are sent ahead
    pool.shutdown(grace=5.0)  # item 0 ends (its result posted quietly); 1-5 never start
    consumer.join(10)
    assert not consumer.is_alive()
    assert [(o.index, o.ok) for o in seen] == [(0, True)]
    assert len(errors) == 1 and "5 of 6 items" in str(errors[0])


def by_index(outcomes):
    return {o.index: o for o in outcomes}
