"""Display objects that render wherever they are shown.

A :class:`TrialView` or :class:`ExperimentView` holds records and renders lazily:
HTML in Jupyter, JupyterLab and VS Code (``_repr_mimebundle_``: the HTML and a few
lines of text for front ends without HTML, nothing else, so that a saved notebook
holds each view once), rich in a terminal (``__rich_console__``), Markdown
(``to_markdown()``) and plain text (``str``)::

    >>> from dspex import Experiment, ProgramInfo
    >>> view = ExperimentView(Experiment(name="demo", program=ProgramInfo(name="qa")))
    >>> print(str(view).splitlines()[0])
    Experiment demo
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import cached_property
from typing import Any

from dspex.model import Experiment, Trial
from dspex.store import ResultStore
from dspex.view.labels import find_trial, scored, trial_label
from dspex.view.safetext import terminal_safe
from dspex.view.timeline import Timeline, build_timeline
from dspex.view.window import (
    LONG_TRIAL,
    PAGE_EVENTS,
    EventWindow,
    around_trial,
    holds_long_trial,
    read_window,
)

__all__ = ["ExperimentView", "TrialView", "read_trial_view"]

TEXT_WIDTH = 100


class TrialView:
    """One trial's unified timeline; ``timeline`` is the data every rendering shares.

    ``window``: ``trial`` holds only these events of a long trial (read a page at a time,
    see :mod:`dspex.view.window`); every rendering says which, and how to see more.
    """

    def __init__(
        self, experiment: Experiment, trial: Trial, window: EventWindow | None = None
    ) -> None:
        self.experiment = experiment
        self.trial = trial
        self.window = window

    @cached_property
    def timeline(self) -> Timeline:
        timeline = build_timeline(self.trial, self.experiment)
        return timeline if self.window is None else replace(timeline, window=self.window)

    def filter(self, **filters: Any) -> TrialView:
        """A view showing only the events that match (``sources=``, ``workers=``,
        ``modules=``, ``text=``; see :meth:`Timeline.filter`). On a window of a long
        trial, only its events are searched."""
        view = TrialView(self.experiment, self.trial, self.window)
        view.__dict__["timeline"] = self.timeline.filter(**filters)
        return view

    def to_html(self) -> str:
        from dspex.view.html import timeline_html, window_html

        if self.window is not None:
            return str(window_html(self.timeline, limit=0, experiment=self.experiment))
        return str(timeline_html(self.timeline, experiment=self.experiment))

    def to_markdown(self) -> str:
        from dspex.view.markdown import timeline_markdown

        return timeline_markdown(self.timeline)

    def to_text(self, width: int = TEXT_WIDTH, *, abridged: bool = False) -> str:
        from dspex.view.text import timeline_text
        from dspex.view.why import why_of

        return timeline_text(
            self.timeline,
            width=width,
            abridged=abridged,
            why=why_of(self.trial, self.experiment),
        )

    def to_short_text(self) -> str:
        """A few lines for front ends that cannot show HTML (the notebook's text fallback)."""
        tl, trial, window = self.timeline, self.trial, self.window
        meta = [trial.name] if trial.name else []
        meta += [trial.id, f"status {trial.status.value}"]
        if tl.parent is not None:
            meta.append(f"parent: {trial_label(tl.parent)}")
        if window is not None:
            events, calls, hits = window.total, window.lm_calls, window.cache_hits
        else:
            events, calls, hits = tl.event_count, tl.lm_call_count, tl.cache_hit_count
        text = (
            f"{tl.title}\n{' · '.join(meta)}\n"
            f"{events} events, {calls} LM calls"
            + (f" ({hits} from DSPy's cache)" if hits else "")
            + "; "
        )
        if window is not None:
            text += f"this view holds {window.range_text}: print(view) or view.to_text()"
            rest = f"{window.left_out_line} {window.more}".strip()
            text += f"\n{rest}" if rest else ""
        else:
            text += "the whole timeline: print(view) or view.to_text()"
        return terminal_safe(text)

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.to_html(), "text/plain": self.to_short_text()}

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from dspex.view.terminal import timeline_renderables

        yield from timeline_renderables(self.timeline)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"<TrialView {self.timeline.title} of experiment {self.experiment.id}>"


class ExperimentView:
    """One experiment's overview: design, statistics, plot, lineage and trials."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment

    def trial(self, trial: int | str) -> TrialView:
        """The view of one trial: its row number (``12``), its candidate number
        (``"c8"``, ``"candidate 8"``) or its id."""
        return TrialView(self.experiment, find_trial(self.experiment, trial))

    def to_html(self) -> str:
        from dspex.view.html import experiment_html

        return str(experiment_html(self.experiment))

    def to_markdown(self) -> str:
        from dspex.view.markdown import experiment_markdown

        return experiment_markdown(self.experiment)

    def to_text(self, width: int = TEXT_WIDTH) -> str:
        from dspex.view.text import experiment_text

        return experiment_text(self.experiment, width=width)

    def to_short_text(self) -> str:
        """A few lines for front ends that cannot show HTML (the notebook's text fallback)."""
        e = self.experiment
        best = e.best_trial
        lines = [f"Experiment {e.name}", f"{e.id} · status {e.status.value}"]
        if best is not None:
            lines.append(f"best: {trial_label(best)} ({scored(best)})")
        lines.append(f"{len(e.trials)} trials; the whole overview: print(view) or view.to_text()")
        return terminal_safe("\n".join(lines))

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.to_html(), "text/plain": self.to_short_text()}

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from dspex.view.terminal import experiment_renderables

        yield from experiment_renderables(self.experiment)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"<ExperimentView {self.experiment.name!r} ({self.experiment.id})>"


def read_trial_view(
    store: ResultStore,
    experiment_id: str,
    trial_id: str,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> TrialView:
    """The view of one trial of ``store`` (see :meth:`dspex.TraceViewer.view_trial`): a
    trial of more than :data:`LONG_TRIAL` events, or any trial when ``offset`` or
    ``limit`` is given, as a window of its events read alone."""
    headers = store.get_experiment(experiment_id, events=False)
    headers.trial(trial_id)  # an unknown trial: the error names the rows there are
    total = store.count_events(experiment_id, trial_id)
    if offset == 0 and limit is None and total <= LONG_TRIAL:
        if holds_long_trial(headers, LONG_TRIAL):  # the other trials' ends only
            experiment = around_trial(store, headers, trial_id)
        else:
            experiment = store.get_experiment(experiment_id)
        return TrialView(experiment, experiment.trial(trial_id))
    size = PAGE_EVENTS if limit is None else limit
    experiment, trial, window = read_window(
        store, experiment_id, trial_id, offset, size, experiment=headers, total=total
    )
    if window.last < window.total:
        following = min(size, window.total - window.last)
        window = replace(
            window,
            more=f"The next {following:,}: TraceViewer.view_trial({experiment_id!r}, "
            f"{trial_id!r}, offset={window.last}"
            + (f", limit={limit}" if limit is not None else "")
            + ").",
        )
    return TrialView(experiment, trial, window)
