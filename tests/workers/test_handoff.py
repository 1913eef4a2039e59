"""Handoff: a thread that runs Python gives way to a sleeper whose time has come, until
the sleeper's round is over; used by the spool's flusher and by a pool of one thread."""

from __future__ import annotations

import threading
import time

from dspex.workers.handoff import Handoff


def _past() -> int:
    return time.monotonic_ns() - 1


def test_before_the_sleepers_time_nobody_waits():
    handoff = Handoff()
    handoff.sleep_until(time.monotonic_ns() + 10**10)
    assert handoff.give_way(timeout=5) is False


def test_once_its_time_has_come_the_running_thread_waits_until_the_round_is_over():
    handoff = Handoff()
    handoff.sleep_until(_past())
    order: list[str] = []

    def sleeper() -> None:
        time.sleep(0.05)  # its round, while the other thread waits
        order.append("round over")
        handoff.sleep_until(time.monotonic_ns() + 10**10)

    thread = threading.Thread(target=sleeper)
    thread.start()
    assert handoff.give_way(timeout=30) is True
    order.append("went on")
    thread.join()
    assert order == ["round over", "went on"]
    assert handoff.give_way(timeout=30) is False  # its next time has not come


def test_a_sleeper_that_does_not_come_is_waited_for_once_until_it_sleeps_again():
    handoff = Handoff()
    handoff.sleep_until(_past())
    assert handoff.give_way(timeout=0.01) is True  # timed out
    assert handoff.give_way(timeout=30) is False  # not waited for again...
    handoff.sleep_until(_past())
    assert handoff.give_way(timeout=0.01) is True  # ...until it says when it sleeps


def test_a_stopped_sleeper_is_not_waited_for():
    handoff = Handoff()
    handoff.sleep_until(None)
    assert handoff.give_way(timeout=30) is False


def test_a_pool_of_one_thread_gets_the_gil_from_its_busy_worker_at_each_quiet_poll(
    make_pool, give_ways
):
    """Items sent ahead to the one worker: it posts results quietly, and once the pool's
    50 ms look comes it gives way to the pool."""
    pool = make_pool("thread", size=1)
    outcomes = list(pool.map(_busy, range(300)))
    assert sorted(o.value for o in outcomes) == list(range(300))
    assert len(give_ways) >= 299  # each quiet post asks
    assert any(give_ways)  # ~0.3 s of items: the pool looked several times


def _busy(item: int) -> int:
    deadline = time.perf_counter() + 0.001
    while time.perf_counter() < deadline:
        pass
    return item
