"""Temporary, per-compile patches of DSPy internals, safe when compiles run concurrently.

DSPy calls some functions of interest through a module global (SIMBA's
``wrap_program``), so the only way to see those calls is to replace the global.
:class:`ModulePatch` does that only while at least one recorded compile needs it
(a reference count), and its replacement dispatches each call to the hook of the
compile running in the calling thread; every other caller gets the original
function, unchanged. The hook travels in DSPy's thread-local settings, like the
recorder, so DSPy worker threads find it too.

    WRAP = ModulePatch("dspy.teleprompt.simba", "wrap_program", hook_key="dspex_simba_hook")
    WRAP.acquire()            # in hook.install(); raises UnsupportedOptimizerVersion if missing
    ...                       # calls in this compile go to hook.wrap_program(original, ...)
    WRAP.release()            # in hook.uninstall(); the original is back when no compile needs it

Instance attributes are simpler: :func:`require_attribute` checks them at install time.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any

from dspex.capture.context import lookup
from dspex.errors import UnsupportedOptimizerVersion

__all__ = ["ModulePatch", "compile_locals", "require_attribute", "require_locals", "unsupported"]


def unsupported(optimizer: str, missing: str, exc: BaseException | None = None) -> Exception:
    import dspy

    error = UnsupportedOptimizerVersion(
        f"dspex cannot record {optimizer} with DSPy {dspy.__version__}: {missing} is missing "
        "or has changed. Capture would silently record less, so it stops here; pin the DSPy "
        "version dspex supports (see docs/capture.md) or upgrade dspex."
    )
    if exc is not None:
        error.__cause__ = exc
    return error


def require_attribute(optimizer_name: str, owner: Any, attribute: str, where: str) -> Any:
    """``getattr(owner, attribute)``, or UnsupportedOptimizerVersion naming ``where``."""
    try:
        return getattr(owner, attribute)
    except AttributeError as exc:
        raise unsupported(optimizer_name, where, exc) from exc


def require_locals(optimizer_name: str, function: Any, names: tuple[str, ...]) -> None:
    """Raise UnsupportedOptimizerVersion unless ``function`` has all the local ``names``."""
    code = getattr(inspect.unwrap(function), "__code__", None)
    missing = [n for n in names if n not in set(getattr(code, "co_varnames", ()))]
    if missing:
        where = getattr(function, "__qualname__", "compile")
        raise unsupported(optimizer_name, f"{where} local variable(s) {', '.join(missing)}")


def compile_locals(marker: str, names: tuple[str, ...]) -> dict[str, Any]:
    """The local ``names`` of the running ``compile`` that has the local ``marker``.

    Some decisions (SIMBA's bucket, COPRO's depth and candidate, the random search's seed)
    live only in ``compile``'s local variables; :func:`require_locals` checks them at
    install time. Returns ``{}`` when no such frame is on the stack.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "compile" and marker in frame.f_locals:
            return {k: frame.f_locals.get(k) for k in names}
        frame = frame.f_back  # type: ignore[assignment]
    return {}


class ModulePatch:
    """A module global replaced by a dispatcher while recorded compiles need it."""

    def __init__(self, module: str, attribute: str, *, hook_key: str, method: str) -> None:
        self.module_name = module
        self.attribute = attribute
        self.hook_key = hook_key
        self.method = method
        self._lock = threading.Lock()
        self._users = 0
        self._original: Any = None

    @property
    def where(self) -> str:
        return f"{self.module_name}.{self.attribute}"

    def original(self) -> Any:
        """The function DSPy defines (also while patched)."""
        with self._lock:
            if self._users:
                return self._original
        return getattr(importlib.import_module(self.module_name), self.attribute)

    def check(self, optimizer_name: str) -> None:
        module = importlib.import_module(self.module_name)
        if not callable(getattr(module, self.attribute, None)):
            raise unsupported(optimizer_name, self.where)

    def acquire(self, optimizer_name: str) -> None:
        self.check(optimizer_name)
        with self._lock:
            if self._users == 0:
                module = importlib.import_module(self.module_name)
                self._original = getattr(module, self.attribute)
                setattr(module, self.attribute, self._dispatcher(self._original))
            self._users += 1

    def release(self) -> None:
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                module = importlib.import_module(self.module_name)
                setattr(module, self.attribute, self._original)
                self._original = None

    def _dispatcher(self, original: Callable[..., Any]) -> Callable[..., Any]:
        hook_key, method = self.hook_key, self.method

        def dispatch(*args: Any, **kwargs: Any) -> Any:
            hook = lookup(hook_key)
            if hook is None:
                return original(*args, **kwargs)
            return getattr(hook, method)(original, *args, **kwargs)

        dispatch.__wrapped__ = original  # type: ignore[attr-defined]
        dispatch.__name__ = getattr(original, "__name__", self.attribute)
        return dispatch
