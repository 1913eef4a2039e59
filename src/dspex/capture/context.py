"""Where a DSPy call is recorded: the active trial's recorder, or the experiment's listener.

Both ride in dspex's own context (a ``ContextVar``), never in DSPy's settings: DSPy pickles,
copies and saves its settings (``dspy.settings.save()``), and nothing of dspex belongs
there. asyncio tasks, ``contextvars.copy_context()`` and the threads of DSPy's
``ParallelExecutor`` (``dspy.Parallel``, ``dspy.Evaluate(num_threads=...)``,
``program.batch``; carried by :mod:`dspex.capture.instrument` while an experiment or
``autolog()`` is on) take it into the threads and tasks they start::

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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from dspex.capture.recorder import TrialRecorder

__all__ = [
    "LISTENER_KEY",
    "RECORDER_KEY",
    "CaptureListener",
    "active_listener",
    "active_recorder",
    "carried",
    "close_ambient",
    "describe_call",
    "lookup",
    "open_ambient",
    "pop",
    "push",
    "recording",
    "scope",
    "scoped",
    "set_fallback_listener",
]

RECORDER_KEY = "recorder"
LISTENER_KEY = "listener"

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_scope: ContextVar[Mapping[str, Any]] = ContextVar("dspex_scope", default=_EMPTY)
_T = TypeVar("_T")


def lookup(key: str) -> Any:
    """The value of ``key`` in dspex's context here (None when unset)."""
    return _scope.get().get(key)


def push(**keys: Any) -> Token[Mapping[str, Any]]:
    """Add ``keys`` to dspex's context here (and in what this context starts)."""
    return _scope.set(MappingProxyType({**_scope.get(), **keys}))


def pop(token: Token[Mapping[str, Any]]) -> None:
    """Undo :func:`push`. A token from another context (a teardown on another thread or
    after an ``await``) cannot be reset there; the values of that context end with it."""
    try:
        _scope.reset(token)
    except ValueError:
        pass


@contextmanager
def scoped(**keys: Any) -> Iterator[None]:
    """:func:`push` for the duration of a ``with`` block."""
    token = push(**keys)
    try:
        yield
    finally:
        pop(token)


def scope() -> Mapping[str, Any]:
    """dspex's context here, to hand to a thread that does not inherit it (:func:`carried`)."""
    return _scope.get()


def carried(function: Callable[..., _T], values: Mapping[str, Any]) -> Callable[..., _T]:
    """``function`` running with dspex's context ``values`` (from :func:`scope`), wherever
    it is called; only dspex's own context travels, nothing else of the caller's."""
    if not values:
        return function

    def run(*args: Any, **kwargs: Any) -> _T:
        token = _scope.set(values)
        try:
            return function(*args, **kwargs)
        finally:
            _scope.reset(token)

    return run


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

    def warn(self, message: str) -> None:
        """Note on the experiment what could not be recorded (shown in every view)."""


def active_recorder() -> TrialRecorder | None:
    """The recorder of the trial the current code runs for, if any."""
    recorder: TrialRecorder | None = lookup(RECORDER_KEY)
    return recorder


def active_listener() -> CaptureListener | None:
    """The listener of the experiment the current code runs in: the one in context, else
    the only experiment open in the process, else the fallback (``dspex.autolog``)."""
    listener: CaptureListener | None = lookup(LISTENER_KEY)
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


def describe_call(instance: Any) -> str:
    """A call in a warning: ``an LM call to openai/gpt-4o-mini``, ``a call of Predict``."""
    model = getattr(instance, "model", None)
    if isinstance(model, str) and callable(getattr(instance, "forward", None)):
        return f"an LM call to {model}"
    return f"a call of {type(instance).__name__}"


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
        self._tell(describe_call(instance))
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
        for listener in self.listeners:
            listener.unattributed(what, thread)

    def warn(self, message: str) -> None:
        for listener in self.listeners:
            listener.warn(message)
