"""Where a DSPy call is recorded: the active trial's recorder, or the experiment's listener.

Both ride in DSPy's own context overrides (see :mod:`dspex.capture.dspy_bridge`), which
``dspy.Parallel``, ``dspy.Evaluate(num_threads=...)``, ``dspy.asyncify`` and asyncio
tasks carry into the threads and tasks they start::

    with recording(recorder):
        program(question="2+2?")     # every event lands in `recorder`

A call made where no trial is active goes to the :class:`CaptureListener` of the
experiment it runs in (``dspex.experiment`` puts one in context; it opens trials for direct
calls, compiles and ``dspy.Evaluate``). Threads that DSPy did not start (a plain
``threading.Thread``, a ``concurrent.futures`` pool) carry no context: while exactly one
experiment is open in the process, their calls go to it; while several are, nobody can
tell which one they belong to, and every open experiment is told how many calls went
unrecorded (:meth:`CaptureListener.unattributed`), so that no gap is silent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from dspex.capture.dspy_bridge import lookup, scoped
from dspex.capture.recorder import TrialRecorder

__all__ = [
    "LISTENER_KEY",
    "RECORDER_KEY",
    "CaptureListener",
    "active_listener",
    "active_recorder",
    "close_ambient",
    "open_ambient",
    "recording",
    "set_fallback_listener",
]

RECORDER_KEY = "dspex_recorder"
LISTENER_KEY = "dspex_listener"


class CaptureListener(Protocol):
    """What the DSPy callback reports to when a call is not part of a trial already.

    Every method is called from DSPy's callback dispatch, which logs and swallows
    exceptions: an implementation records its own failures.
    """

    def calls_recorder(self, instance: Any) -> TrialRecorder | None:
        """The recorder for a top-level call made outside any trial (or None: not recorded).
        Each call that gets a recorder is matched by one :meth:`calls_done`."""

    def calls_done(self, recorder: TrialRecorder) -> None:
        """A top-level call that :meth:`calls_recorder` placed has ended."""

    def compile_started(self, call_id: str, optimizer: Any, inputs: dict[str, Any]) -> None: ...

    def compile_finished(
        self, call_id: str, outputs: Any, exception: BaseException | None
    ) -> None: ...

    def evaluate_started(self, call_id: str, evaluate: Any, inputs: dict[str, Any]) -> None: ...

    def evaluate_finished(
        self, call_id: str, outputs: Any, exception: BaseException | None
    ) -> None: ...

    def unattributed(self, what: str, thread: str) -> None:
        """A call of kind ``what`` on ``thread`` could not be attributed to one experiment."""


def active_recorder() -> TrialRecorder | None:
    """The recorder of the trial the current code runs for, if any."""
    return lookup(RECORDER_KEY)


def active_listener() -> CaptureListener | None:
    """The listener of the experiment the current code runs in: the one in context, else
    the only experiment open in the process, else the fallback (``dspex.autolog``)."""
    listener = lookup(LISTENER_KEY)
    if listener is not None:
        return listener
    if _ambient:
        return _ambient[0] if len(_ambient) == 1 else _Ambiguous(tuple(_ambient))
    return _fallback


@contextmanager
def recording(recorder: TrialRecorder | None, **extra: Any) -> Iterator[None]:
    """Attribute everything DSPy does inside the block (and its worker threads) to ``recorder``."""
    with scoped(**{RECORDER_KEY: recorder}, **extra):
        yield


# -- experiments open in this process, for threads without context ----------------------

_ambient: list[CaptureListener] = []
_ambient_lock = threading.Lock()
_fallback: CaptureListener | None = None


def open_ambient(listener: CaptureListener) -> None:
    """``listener``'s experiment is open: context-free threads may report to it."""
    with _ambient_lock:
        _ambient.append(listener)


def close_ambient(listener: CaptureListener) -> None:
    with _ambient_lock:
        if listener in _ambient:
            _ambient.remove(listener)


def set_fallback_listener(listener: CaptureListener | None) -> None:
    """The listener for calls outside every experiment (``dspex.autolog()``), or None."""
    global _fallback
    _fallback = listener


class _Ambiguous:
    """Several experiments are open and the calling thread carries no context: record the
    call nowhere, and tell each experiment that it happened."""

    def __init__(self, listeners: tuple[CaptureListener, ...]) -> None:
        self.listeners = listeners

    def _tell(self, what: str) -> None:
        thread = threading.current_thread().name
        for listener in self.listeners:
            listener.unattributed(what, thread)

    def calls_recorder(self, instance: Any) -> TrialRecorder | None:
        self._tell(f"a call of {type(instance).__name__}")
        return None

    def calls_done(self, recorder: TrialRecorder) -> None:
        pass

    def compile_started(self, call_id: str, optimizer: Any, inputs: dict[str, Any]) -> None:
        self._tell(f"a compile of {type(optimizer).__name__}")

    def compile_finished(self, call_id: str, outputs: Any, exception: BaseException | None) -> None:
        pass

    def evaluate_started(self, call_id: str, evaluate: Any, inputs: dict[str, Any]) -> None:
        self._tell("a dspy.Evaluate call")

    def evaluate_finished(
        self, call_id: str, outputs: Any, exception: BaseException | None
    ) -> None:
        pass

    def unattributed(self, what: str, thread: str) -> None:
        pass
