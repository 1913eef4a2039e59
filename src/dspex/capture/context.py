"""How the active recorder travels with the code it records.

A ContextVar of our own would be lost in DSPy's worker threads, so the recorder
rides in DSPy's own thread-local settings (``dspy.context``), which
``dspy.Parallel`` / ``dspy.Evaluate(num_threads=...)`` copy into every worker thread.

    with recording(recorder):
        program(question="2+2?")     # every event lands in `recorder`
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dspy.dsp.utils.settings import settings, thread_local_overrides

if TYPE_CHECKING:
    from dspex.capture.recorder import TrialRecorder
    from dspex.journal import ExperimentJournal

__all__ = ["JOURNAL_KEY", "RECORDER_KEY", "active_journal", "active_recorder", "recording"]

RECORDER_KEY = "dspex_recorder"
JOURNAL_KEY = "dspex_journal"


def _lookup(key: str) -> Any:
    overrides = thread_local_overrides.get()
    if key in overrides:
        return overrides[key]
    return settings.get(key) if key in settings else None


def active_recorder() -> TrialRecorder | None:
    """The recorder of the trial the current code runs for, if any."""
    return _lookup(RECORDER_KEY)


def active_journal() -> ExperimentJournal | None:
    """The journal of the experiment the current code runs in, if any."""
    return _lookup(JOURNAL_KEY)


@contextmanager
def recording(recorder: TrialRecorder | None, **extra: Any) -> Iterator[None]:
    """Attribute everything DSPy does inside the block (and its worker threads) to ``recorder``."""
    import dspy

    with dspy.context(**{RECORDER_KEY: recorder}, **extra):
        yield
