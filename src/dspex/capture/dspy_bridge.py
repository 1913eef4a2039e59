"""The one module that touches DSPy's private settings and internals.

DSPy keeps its configuration in two places: a process-wide dict that only the thread which
first called ``dspy.configure`` may change, and per-context overrides (a ContextVar) that
``dspy.context``, ``dspy.Parallel``, ``dspy.Evaluate(num_threads=...)`` and
``dspy.asyncify`` carry into the threads and tasks they start. dspex rides on both: its
callback must be in the process-wide list (so that plain threads call it) and in the
current overrides (``dspy.context`` snapshots the callbacks in effect when entered), and the
objects that say where a call is recorded travel in the overrides.

Everything else in dspex goes through these functions, so that when DSPy moves its
internals, one module changes::

    token = push(dspex_recorder=recorder)      # this context and the threads DSPy starts
    try:
        program(question="2+2?")
    finally:
        pop(token)
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import Token
from typing import Any

from dspy.dsp.utils.settings import global_lock, main_thread_config, thread_local_overrides

__all__ = [
    "EVALUATE_ERRORS_KEY",
    "WORKER_SETTING_KEYS",
    "acquire_evaluate_errors",
    "add_global_callback",
    "add_lm_history_listener",
    "ensure_callback",
    "global_callbacks",
    "lookup",
    "pop",
    "push",
    "release_evaluate_errors",
    "remove_callback",
    "scoped",
    "worker_settings",
]

#: DSPy settings that decide what a program does; what a worker in another thread, process
#: or machine needs to run it the same way.
WORKER_SETTING_KEYS = ("lm", "adapter", "rm", "trace", "max_errors", "track_usage")

_MISSING = object()


def lookup(key: str) -> Any:
    """The value of ``key`` in this context's overrides, else in the global configuration."""
    overrides = thread_local_overrides.get()
    value = overrides.get(key, _MISSING)
    if value is _MISSING:
        value = main_thread_config.get(key)
    return value


def push(**keys: Any) -> Token[Any]:
    """Add ``keys`` to this context's overrides (seen by the threads DSPy starts from here)."""
    overrides = thread_local_overrides.get()
    return thread_local_overrides.set(type(overrides)({**overrides, **keys}))


def pop(token: Token[Any]) -> None:
    """Undo :func:`push`. A token from another context (a teardown on another thread or
    after an ``await``) cannot be reset there; the overrides of that context end with it."""
    try:
        thread_local_overrides.reset(token)
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


def worker_settings() -> dict[str, Any]:
    """The caller's settings a worker needs (:data:`WORKER_SETTING_KEYS`), those that are set."""
    found = ((key, lookup(key)) for key in WORKER_SETTING_KEYS)
    return {key: value for key, value in found if value is not None}


# -- the callback -------------------------------------------------------------------------


def global_callbacks() -> list[Any]:
    return list(main_thread_config.get("callbacks") or [])


def _set_global_callbacks(callbacks: list[Any]) -> None:
    # dspy.configure is reserved to the thread that first called it; dspex may be switched
    # on from another one (a notebook cell, a worker). This is the single assignment
    # configure() would make, under the lock configure() takes.
    with global_lock:
        main_thread_config["callbacks"] = callbacks


def add_global_callback(callback: Any) -> bool:
    """Put ``callback`` in the process-wide callbacks; False if it was there already."""
    with _callback_lock:
        callbacks = global_callbacks()
        if any(c is callback for c in callbacks):
            return False
        _set_global_callbacks([*callbacks, callback])
        return True


def ensure_callback(callback: Any) -> Token[Any] | None:
    """Make ``callback`` active here: in the process-wide list, and in this context's
    overrides when they hold a callback list of their own (inside a ``dspy.context``).

    Returns the token of the override it pushed (for :func:`pop`), or None.
    """
    add_global_callback(callback)
    overrides = thread_local_overrides.get()
    if "callbacks" in overrides:
        in_effect = list(overrides["callbacks"] or [])
        if not any(c is callback for c in in_effect):
            return push(callbacks=[*in_effect, callback])
    return None


def remove_callback(callback: Any) -> None:
    """Take ``callback`` out of the process-wide list and of this context's overrides."""
    with _callback_lock:
        callbacks = global_callbacks()
        if any(c is callback for c in callbacks):
            _set_global_callbacks([c for c in callbacks if c is not callback])
    overrides = thread_local_overrides.get()
    in_effect = list(overrides.get("callbacks") or [])
    if any(c is callback for c in in_effect):
        push(callbacks=[c for c in in_effect if c is not callback])


_callback_lock = threading.Lock()


# -- LM history: usage, cost and cache hits of the LM call in flight --------------------

_history_listeners: list[Callable[[dict[str, Any]], None]] = []
_history_lock = threading.Lock()


def add_lm_history_listener(listener: Callable[[dict[str, Any]], None]) -> None:
    """Call ``listener(entry)`` with DSPy's history entry of every LM call, from inside it.

    ``on_lm_end`` only receives an LM call's outputs; usage, cost and cache hits are in the
    history entry DSPy builds inside the call. The wrapper of ``BaseLM.update_history``
    runs the original first and unchanged, then the listeners (whose errors never reach
    the LM call).
    """
    from dspy.clients.base_lm import BaseLM

    with _history_lock:
        if listener in _history_listeners:
            return
        _history_listeners.append(listener)
        if getattr(BaseLM.update_history, "_dspex_original", None) is not None:
            return
        original = BaseLM.update_history

        def update_history(self: Any, entry: dict[str, Any]) -> Any:
            result = original(self, entry)
            for each in tuple(_history_listeners):
                try:
                    each(entry)
                except Exception:  # noqa: BLE001 - capture must never break an LM call
                    pass
            return result

        update_history.__wrapped__ = original  # type: ignore[attr-defined]
        update_history._dspex_original = original  # type: ignore[attr-defined]
        BaseLM.update_history = update_history


# -- dspy.Evaluate: the exception behind each failed example -----------------------------

#: Override key of a callable that receives ``{example index: exception}`` when a
#: ``dspy.Evaluate`` call run in its context has finished.
EVALUATE_ERRORS_KEY = "dspex_evaluate_errors"

_EVALUATE_MODULE = "dspy.evaluate.evaluate"
_executor_users = 0
_executor_lock = threading.Lock()
_original_executor: Any = None


def _reporting_executor(base: type) -> type:
    class ReportingParallelExecutor(base):
        """DSPy's executor, unchanged, that also hands the exceptions it caught (program or
        metric, per example) to the dspex evaluation in whose context it ran. DSPy keeps
        only a log line of them, and gives the failed example an empty prediction."""

        def execute(self, function: Any, data: Any) -> Any:
            try:
                return super().execute(function, data)
            finally:
                report = lookup(EVALUATE_ERRORS_KEY)
                if report is not None and self.exceptions_map:
                    report(dict(self.exceptions_map))

    ReportingParallelExecutor.__qualname__ = base.__qualname__
    return ReportingParallelExecutor


def acquire_evaluate_errors() -> None:
    """While acquired (counted), ``dspy.Evaluate`` reports its examples' exceptions to
    :data:`EVALUATE_ERRORS_KEY`. Release with :func:`release_evaluate_errors`."""
    global _executor_users, _original_executor
    with _executor_lock:
        if _executor_users == 0:
            module: Any = importlib.import_module(_EVALUATE_MODULE)
            _original_executor = module.ParallelExecutor
            module.ParallelExecutor = _reporting_executor(_original_executor)
        _executor_users += 1


def release_evaluate_errors() -> None:
    global _executor_users, _original_executor
    with _executor_lock:
        if _executor_users == 0:
            return
        _executor_users -= 1
        if _executor_users == 0:
            evaluate_module: Any = importlib.import_module(_EVALUATE_MODULE)
            evaluate_module.ParallelExecutor = _original_executor
            _original_executor = None
