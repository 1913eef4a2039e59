"""Capture: recording DSPy runs as TraceEvents on the right Trial.

Data flows one way: DSPy run -> :class:`DspexCallback` and optimizer hooks ->
:class:`TrialRecorder` -> ExperimentJournal -> ResultStore. Capture never renders.
"""

from dspex.capture.callback import DspexCallback
from dspex.capture.context import active_journal, active_recorder, recording
from dspex.capture.recorder import RawEvent, TrialRecorder

__all__ = [
    "DspexCallback",
    "RawEvent",
    "TrialRecorder",
    "active_journal",
    "active_recorder",
    "recording",
]
