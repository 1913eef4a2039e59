"""A long trial read a page at a time: its header, its stored summary, one page of events.

A trial of 200,000 events parses to about a gigabyte; a view of it needs only the events
it shows. :func:`read_window` reads the experiment's trials without their events (each
with its stored :class:`~dspex.model.eventsummary.EventSummary`), the trial's event count
and one page of its events (``ResultStore.read_events``); the timeline of that page
(``Timeline.window`` set) is what the views render. What covers the whole trial comes
from the summary (events, LM calls, cache hits, the outcome, why it was returned); what
needs every event (the time split, the waterfall, the errors, the decisions listed
first) covers the page's events, and every view says so (:attr:`EventWindow.note`)::

    >>> window = EventWindow(offset=500, count=500, total=200_000, lm_calls=50_000)
    >>> window.range_text
    'events 501–1,000 of 200,000'
"""

from __future__ import annotations

from dataclasses import dataclass

from dspex.errors import InvalidQueryError
from dspex.model import Experiment, Trial
from dspex.store import ResultStore

__all__ = [
    "LONG_TRIAL",
    "PAGE_EVENTS",
    "EventWindow",
    "around_trial",
    "check_offset",
    "holds_long_trial",
    "read_window",
]

LONG_TRIAL = 20_000
"""Trials with more events than this are read a page at a time by the viewers."""

PAGE_EVENTS = 500
"""Events ``TraceViewer.view_trial`` shows of a long trial unless told otherwise."""


@dataclass(frozen=True)
class EventWindow:
    """Which events of a trial a view holds (``offset`` .. ``offset + count - 1``, of
    ``total``), and the whole trial's counts from its stored summary."""

    offset: int
    count: int
    total: int
    lm_calls: int = 0
    cache_hits: int = 0
    more: str = ""
    """How to see the next events, for views without links (terminal, notebook)."""

    @property
    def first(self) -> int:
        """The 1-based number of the first event shown (0 when none is)."""
        return self.offset + 1 if self.count else 0

    @property
    def last(self) -> int:
        return self.offset + self.count

    @property
    def left_out(self) -> int:
        return self.total - self.count

    @property
    def range_text(self) -> str:
        if not self.count:
            return f"no events of {self.total:,}"
        return f"events {self.first:,}–{self.last:,} of {self.total:,}"

    @property
    def note(self) -> str:
        """What a view of this window says about what it covers."""
        return (
            f"This trial has {self.total:,} events; this view read {self.range_text} "
            "(a page at a time). The event and LM call counts, the outcome and why it was "
            "returned cover the whole trial; the time split, the waterfall, the errors and "
            f"the decisions listed cover {self.range_text} only."
        )

    @property
    def left_out_line(self) -> str:
        """``N events not shown (N before, N after).``; empty when none are left out."""
        if not self.left_out:
            return ""
        before = f"{self.offset:,} before" if self.offset else ""
        after = self.total - self.last
        parts = [p for p in (before, f"{after:,} after" if after else "") if p]
        return f"{self.left_out:,} events not shown ({', '.join(parts)})."

    @property
    def said(self) -> str:
        """:attr:`note` and :attr:`left_out_line`: what every view of the window says
        first (then :attr:`more`, on a line of its own in text)."""
        return f"{self.note} {self.left_out_line}".rstrip()


def check_offset(offset: int, total: int) -> None:
    """:class:`InvalidQueryError` unless ``offset`` is an event of a ``total``-event trial
    (0 is always valid: the first page of a trial without events is empty)."""
    if offset < 0 or (offset >= total and offset > 0):
        last = f"0–{total - 1:,}" if total else "0"
        raise InvalidQueryError(
            f"offset {offset:,} is past the trial's events: it has {total:,} (offsets {last})"
        )


def read_window(
    store: ResultStore,
    experiment_id: str,
    trial_id: str,
    offset: int,
    limit: int,
    *,
    experiment: Experiment | None = None,
    total: int | None = None,
) -> tuple[Experiment, Trial, EventWindow]:
    """``(experiment, trial, window)``: the experiment's trials without their events
    (``experiment`` when given: read so already), ``trial`` with events ``offset`` ..
    ``offset + limit - 1`` only, and the window they make. ``total``: the trial's event
    count, when known. Raises :class:`InvalidQueryError` for an offset past the end."""
    if limit < 1:
        raise InvalidQueryError(f"limit must be an integer >= 1, got {limit}")
    if experiment is None:
        experiment = store.get_experiment(experiment_id, events=False)
    header = experiment.trial(trial_id)
    if total is None:
        total = store.count_events(experiment_id, header.id)
    check_offset(offset, total)
    events = store.read_events(experiment_id, header.id, offset, limit)
    summary = header.summarized_events()
    window = EventWindow(
        offset=offset,
        count=len(events),
        total=total,
        lm_calls=summary.lm_calls,
        cache_hits=summary.cache_hits,
    )
    # The page keeps the whole trial's summary: outcome and scope cover every event.
    page = header.model_copy(update={"events": tuple(events), "event_summary": summary})
    return experiment, page, window


def holds_long_trial(experiment: Experiment, bound: int = LONG_TRIAL) -> bool:
    """Whether any trial of ``experiment`` (read without events: by its summary) has more
    than ``bound`` events."""
    return any(t.summarized_events().events > bound for t in experiment.trials)


def around_trial(store: ResultStore, experiment: Experiment, trial_id: str) -> Experiment:
    """``experiment`` (read without its events) with ``trial_id`` read whole and every
    other trial holding only its first and last events (each keeping its summary): all
    that a trial's view reads of the other trials (when they were recording), so that a
    short trial of an experiment that also holds a long one is shown as it always was,
    without reading the long one."""
    trials = []
    for trial in experiment.trials:
        if trial.id == trial_id:
            trial = store.get_trial(experiment.id, trial.id)
        else:
            count = trial.summarized_events().events
            ends = store.read_events(experiment.id, trial.id, 0, 1) if count else []
            if count > 1:
                ends += store.read_events(experiment.id, trial.id, count - 1, 1)
            trial = trial.model_copy(update={"events": tuple(ends)})
        trials.append(trial)
    return experiment.model_copy(update={"trials": tuple(trials)})
