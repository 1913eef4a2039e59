"""What DSPy prints while an experiment runs: its progress bars and INFO lines.

The setting ``capture.dspy_output`` decides:

* ``show``: as without dspex;
* ``quiet``: no tqdm bar and no DSPy line below WARNING;
* ``auto`` (the default): ``show`` when standard output is a terminal; in a notebook, one
  dspex progress line that DSPy's bars update in place of their own; otherwise (a pipe,
  a file, CI) ``quiet``.

While at least one experiment block is open, :func:`dspy_output` replaces the tqdm
class that DSPy and GEPA create their bars from by :class:`_Collapsed` (a bar that
draws nothing and reports its count to the line, if any) and raises the level of the
``dspy`` logger's handlers to WARNING; the last block to close puts both back.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dspex.config import get_settings

__all__ = ["dspy_output", "output_mode"]

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[Any, str, Any]] = []  # (owner, attribute, original)
_levels: list[tuple[logging.Handler, int]] = []
_line: _ProgressLine | None = None


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return get is not None and type(get()).__name__ == "ZMQInteractiveShell"


def output_mode(setting: str | None = None) -> str:
    """``show``, ``quiet`` or ``line`` (a notebook's one progress line) for ``setting``
    (default: the ``capture.dspy_output`` setting)."""
    if setting is None:
        setting = get_settings().capture.dspy_output
    if setting != "auto":
        return setting
    if _in_notebook():
        return "line"
    isatty = getattr(sys.stdout, "isatty", None)
    return "show" if isatty is not None and isatty() else "quiet"


class _ProgressLine:
    """One line in a notebook's output, rewritten as DSPy's bars advance."""

    def __init__(self) -> None:
        from IPython.display import display

        self._handle = display(  # type: ignore[no-untyped-call]  # IPython's is untyped
            {"text/plain": "dspex: starting"}, raw=True, display_id=True
        )
        self._shown = 0.0

    def show(self, description: str, n: float, total: float | None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._shown < 0.2:
            return
        self._shown = now
        count = f"{n:g}/{total:g}" if total else f"{n:g}"
        text = f"dspex: {description or 'running'} {count}".strip()
        if self._handle is not None:
            self._handle.update({"text/plain": text}, raw=True)


def _collapsed_class(base: type) -> type:
    class _Collapsed(base):  # type: ignore[misc]  # tqdm's class, untyped
        """A tqdm bar that draws nothing; in a notebook it moves dspex's one line."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self._dspex_n = 0.0
            self._dspex_total = kwargs.get("total")
            self._dspex_desc = str(kwargs.get("desc") or "")

        def update(self, n: float | None = 1) -> bool | None:
            self._dspex_n += 1 if n is None else n
            line = _line
            if line is not None:
                line.show(self._dspex_desc, self._dspex_n, self._dspex_total)
            return None

        def set_description(self, desc: str | None = None, refresh: bool | None = True) -> None:
            self._dspex_desc = str(desc or "")

    _Collapsed.__name__ = _Collapsed.__qualname__ = f"Collapsed{base.__name__}"
    return _Collapsed


def _patch_bars() -> None:
    import tqdm

    targets: list[tuple[Any, str]] = [(tqdm, "tqdm")]
    engine = sys.modules.get("gepa.core.engine")  # binds `tqdm` at import
    if engine is not None and getattr(engine, "tqdm", None) is not None:
        targets.append((engine, "tqdm"))
    for owner, attribute in targets:
        original = getattr(owner, attribute)
        _saved.append((owner, attribute, original))
        setattr(owner, attribute, _collapsed_class(original))


def _quiet_logs() -> None:
    for handler in logging.getLogger("dspy").handlers:
        _levels.append((handler, handler.level))
        handler.setLevel(max(handler.level, logging.WARNING))


def _start(mode: str) -> None:
    global _line
    if mode == "line":
        try:
            _line = _ProgressLine()
        except ImportError:  # no IPython after all: quiet
            _line = None
    _patch_bars()
    _quiet_logs()


def _stop() -> None:
    global _line
    while _saved:
        owner, attribute, original = _saved.pop()
        setattr(owner, attribute, original)
    while _levels:
        handler, level = _levels.pop()
        handler.setLevel(level)
    _line = None


@contextmanager
def dspy_output(setting: str | None = None) -> Iterator[str]:
    """DSPy's output as the setting says, for the duration of the block (see the module
    docs); yields the mode in force."""
    global _depth
    mode = output_mode(setting)
    if mode == "show":
        yield mode
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _start(mode)
    try:
        yield mode
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _stop()
