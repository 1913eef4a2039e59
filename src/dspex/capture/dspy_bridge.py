"""The one module that reads and writes DSPy's private settings.

DSPy keeps its configuration in two places: a process-wide dict that only the thread which
first called ``dspy.configure`` may change, and per-context overrides (a ContextVar) that
``dspy.context``, ``dspy.Parallel``, ``dspy.Evaluate(num_threads=...)`` and
``dspy.asyncify`` carry into the threads and tasks they start. dspex's callback must be
in the process-wide list (so that plain threads call it) and in the current overrides
(``dspy.context`` snapshots the callbacks in effect when entered). Nothing else of dspex
goes into DSPy's settings, which DSPy copies, pickles and saves (``dspy.settings.save()``):
where a call is recorded travels in dspex's own context (:mod:`dspex.capture.context`).
The patches dspex applies to DSPy's code are listed in :mod:`dspex.capture.instrument`.

    with settings_scope(lm=lm, callbacks=[...]):   # DSPy settings, for a worker
        program(question="2+2?")
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import Token
from typing import Any

from dspy.dsp.utils.settings import global_lock, main_thread_config, thread_local_overrides

__all__ = [
    "WORKER_SETTING_KEYS",
    "add_global_callback",
    "ensure_callback",
    "global_callbacks",
    "pop_settings",
    "remove_callback",
    "setting",
    "settings_scope",
    "worker_settings",
]

#: DSPy settings that decide what a program does; what a worker in another thread, process
#: or machine needs to run it the same way.
WORKER_SETTING_KEYS = ("lm", "adapter", "rm", "trace", "max_errors", "track_usage")

_MISSING = object()


def setting(key: str) -> Any:
    """DSPy's setting ``key`` here: this context's override, else the global configuration."""
    overrides = thread_local_overrides.get()
    value = overrides.get(key, _MISSING)
    if value is _MISSING:
        value = main_thread_config.get(key)
    return value


def _push_settings(**keys: Any) -> Token[Any]:
    """Add ``keys`` to this context's DSPy overrides (seen by the threads DSPy starts)."""
    overrides = thread_local_overrides.get()
    token: Token[Any] = thread_local_overrides.set(type(overrides)({**overrides, **keys}))
    return token


def pop_settings(token: Token[Any]) -> None:
    """Undo a push of DSPy overrides (:func:`ensure_callback`'s token). A token from
    another context (a teardown on another thread or after an ``await``) cannot be reset
    there; the overrides of that context end with it."""
    try:
        thread_local_overrides.reset(token)
    except ValueError:
        pass


@contextmanager
def settings_scope(**keys: Any) -> Iterator[None]:
    """DSPy settings ``keys`` for the duration of a ``with`` block (like ``dspy.context``,
    without its copy of the global configuration)."""
    token = _push_settings(**keys)
    try:
        yield
    finally:
        pop_settings(token)


def worker_settings() -> dict[str, Any]:
    """The caller's settings a worker needs (:data:`WORKER_SETTING_KEYS`), those that are set."""
    found = ((key, setting(key)) for key in WORKER_SETTING_KEYS)
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
            return _push_settings(callbacks=[*in_effect, callback])
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
        _push_settings(callbacks=[c for c in in_effect if c is not callback])


_callback_lock = threading.Lock()
