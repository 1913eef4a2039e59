"""Capture: the low layer that records DSPy runs as TraceEvents on the right Trial.

Data flows one way: DSPy run -> :class:`DspexCallback` -> :class:`TrialRecorder` (or the
:class:`CaptureListener` of the experiment, for calls outside any trial) -> the journal
(:mod:`dspex.journal`) -> the ResultStore. This package imports nothing above it: it
knows no journal, no front end, no store, and never renders. Its modules:

- ``recorder``: the per-trial event buffer; ``context``: where a call is recorded;
- ``callback``: the DSPy callback; ``dspy_bridge``: the one module touching DSPy's
  private settings; ``instrument``: every patch of DSPy's code, applied and undone
  together; ``program``: what a program is made of; ``jsonable``: JSON data;
- ``retrieval``: retrieval and embedding events, and ``dspex.retriever`` for a user's own
  search; ``dspy_retrieval``: the patches that record DSPy's retrievers and embedders;
- ``scoring``: example results, trial scores and their scopes; ``evaluation``:
  ``dspy.Evaluate`` results through scoring.
"""

from dspex.capture.callback import DspexCallback, shared_callback
from dspex.capture.context import CaptureListener, active_listener, active_recorder, recording
from dspex.capture.instrument import instrumented
from dspex.capture.recorder import RawEvent, TrialRecorder
from dspex.capture.retrieval import retrieval, retriever

__all__ = [
    "CaptureListener",
    "DspexCallback",
    "RawEvent",
    "TrialRecorder",
    "active_listener",
    "active_recorder",
    "instrumented",
    "recording",
    "retrieval",
    "retriever",
    "shared_callback",
]
