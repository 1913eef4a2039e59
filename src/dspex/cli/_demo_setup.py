"""What every ``dspex demo`` sets up: the offline LM, and DSPy's own output kept quiet."""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

__all__ = ["configure_lm", "quiet_dspy"]


def configure_lm() -> Any:
    """The offline LM, configured as DSPy's LM where this thread may configure it."""
    import dspy

    from dspex.offline import offline_lm

    lm = offline_lm()
    try:
        dspy.configure(lm=lm)
    except RuntimeError:  # configure() belongs to another thread (tests): use a context
        pass
    return lm


@contextlib.contextmanager
def quiet_dspy() -> Any:
    """Hide DSPy's own progress bars (stdout) and log lines below ERROR while our bar runs."""
    handlers = logging.getLogger("dspy").handlers
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(max(handler.level, logging.ERROR))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)
