"""Hand the GIL to a thread that wakes on a timer while another thread runs Python.

dspex has threads that sleep until a time and then do a little: the spool's flusher
(every ``journal.flush_interval``) and a pool that looks at the results its worker posted
quietly (every 50 ms). Meanwhile another thread runs the user's program. When the
sleeper's time comes it waits for the GIL, and CPython wakes it each time the running
thread lets the GIL go for a moment (DSPy reads ``os.urandom`` for each ``uuid4``, several
times a call). The running thread takes the GIL back before the sleeper is scheduled,
again and again: the sleeper can wait a hundred milliseconds, and each wake-up is paid in
the running thread's kernel time (``benchmarks/bench_flusher.py``).

A :class:`Handoff` lets the running thread give way at a point of its choosing, once the
sleeper's time has come, until the sleeper's round is over::

    handoff = Handoff()
    # the sleeper, at the end of each round, just before it blocks:
    handoff.sleep_until(time.monotonic_ns() + wait_ns)
    stop.wait(wait_ns / 1e9)
    # the running thread, where it can wait a moment (after a write, after an item):
    handoff.give_way()

``give_way`` returns at once unless the sleeper's time has come; then it waits, at most
``timeout`` seconds, until the sleeper's round is over (its next :meth:`sleep_until`):
blocked, it lets the GIL go, and the sleeper takes it. A sleeper that does not come in time
(stopped, or busy with a long round) is waited for once, not again until it next says when
it sleeps.

    >>> handoff = Handoff()
    >>> handoff.sleep_until(time.monotonic_ns() + 10**9)
    >>> handoff.give_way()         # the sleeper's time has not come
    False
    >>> handoff.sleep_until(0)     # it has, and nobody runs the round here:
    >>> handoff.give_way(0.001)    # waited a millisecond at most
    True
    >>> handoff.give_way()         # ... and not again
    False
"""

from __future__ import annotations

import threading
import time

__all__ = ["GIVE_WAY_WAIT", "Handoff"]

GIVE_WAY_WAIT = 0.002
"""Seconds :meth:`Handoff.give_way` waits at most; a sleeper's round takes tens of µs."""

_NEVER = 2**63 - 1


class Handoff:
    """See the module docs."""

    def __init__(self) -> None:
        self._rounds = 0
        self._slept = threading.Condition()
        self._due_ns = _NEVER

    def sleep_until(self, due_ns: int | None) -> None:
        """The sleeper's round is over; its next wake is at ``due_ns``
        (``time.monotonic_ns()``; None: only when something wakes it)."""
        with self._slept:
            self._rounds += 1
            self._due_ns = _NEVER if due_ns is None else due_ns
            self._slept.notify_all()

    def give_way(self, timeout: float = GIVE_WAY_WAIT) -> bool:
        """Wait until the sleeper's round is over if its time has come (at most
        ``timeout`` seconds); True when it waited."""
        rounds = self._rounds  # read before the time: a round ending in between is seen
        if time.monotonic_ns() < self._due_ns:
            return False
        with self._slept:
            if not self._slept.wait_for(lambda: self._rounds != rounds, timeout):
                self._due_ns = _NEVER
        return True
