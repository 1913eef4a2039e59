"""TraceViewer: the unified trial timeline in notebooks, the terminal and a local web UI.

    >>> from dspex import TraceViewer
    >>> view = TraceViewer.view_trial(experiment_id, trial_id)   # doctest: +SKIP

Viewers read records only (:class:`~dspex.Experiment`, :class:`~dspex.Trial`,
:class:`~dspex.TraceEvent`), through a :class:`~dspex.ResultStore`.
"""

from dspex.view.compare_view import ComparisonView
from dspex.view.display import ExperimentView, TrialView
from dspex.view.text import render_trial_text
from dspex.view.timeline import Timeline, build_timeline
from dspex.view.viewer import TraceViewer

__all__ = [
    "ComparisonView",
    "ExperimentView",
    "Timeline",
    "TraceViewer",
    "TrialView",
    "build_timeline",
    "render_trial_text",
]
