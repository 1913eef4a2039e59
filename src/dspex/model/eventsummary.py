"""What the experiment views need from a trial's events, kept small beside the trial.

A trial's events can be many (thousands of LM calls); an experiment view needs only a few
facts from them: how many events and LM calls there were, which candidates the trial
created and how, what the optimizer decided about it, the scope of its score in records
written before ``Trial.score_scope``, how its compile ended and why it returned what it
did, and the Pareto front it kept. :class:`EventSummary` holds exactly that; the store
computes it when a trial is recorded or sealed (``Trial.event_summary``), so a view of
2,000 trials reads their headers and never parses an event. It is derived data: the
same function computes it from the events of any record, stored or not::

    >>> from datetime import UTC, datetime
    >>> from dspex import TraceEvent, new_id
    >>> t, trial_id = datetime(2026, 1, 1, tzinfo=UTC), new_id("trl")
    >>> def event(i, kind, payload):
    ...     return TraceEvent(trial_id=trial_id, sequence=i, timestamp=t, monotonic_ns=i,
    ...                       source="execution", kind=kind, pid=1, worker="w", payload=payload)
    >>> summary = summarize_events([
    ...     event(0, "lm_call", {"model": "m", "cache_hit": True}),
    ...     event(1, "lm_call", {"model": "m", "cache_hit": False}),
    ...     event(2, "decision", {"optimizer": "GEPA", "decision": "Reject",
    ...                           "details": {"accepted": False}}),
    ... ])
    >>> summary.events, summary.lm_calls, summary.cache_hits, summary.decided
    (3, 2, 1, 'rejected')

:func:`summarize_raw` gives the same summary from events as stored (their JSON parsed to
plain dicts), without building :class:`~dspex.model.TraceEvent` records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from pydantic import Field

from dspex.model._base import JsonDict, Record
from dspex.model.event import EventKind, TraceEvent

__all__ = ["EventSummary", "summarize_events", "summarize_fields", "summarize_raw"]

Decided = Literal["accepted", "rejected", "no change"]

# Kinds compare equal to their text (StrEnum): events and their JSON are read alike.
_LM_CALL = EventKind.LM_CALL
_DECISION = EventKind.DECISION
_CREATED = EventKind.CANDIDATE_CREATED
_SCORE = EventKind.TRIAL_SCORE
_END = EventKind.OPTIMIZER_END
_END_KEYS = ("optimizer", "ok", "error", "returned", "best_candidate", "best_score")
_FRONT_KEYS = ("pareto_front", "valset_scores", "best_on", "valset_size")


class EventSummary(Record):
    """The facts about a trial's events that experiment views show (see the module).

    Payload-shaped fields hold the recorded values, pruned to the keys views read, so the
    views' rules (what counts as a decision, a scope, a returned candidate) stay theirs.
    """

    events: int = Field(default=0, ge=0)
    lm_calls: int = Field(default=0, ge=0)
    cache_hits: int = Field(default=0, ge=0)
    """LM calls answered from DSPy's cache."""
    candidates: tuple[tuple[str, str | None], ...] = ()
    """(candidate trial id, strategy) of each ``candidate_created`` event, in order."""
    decided: Decided | None = None
    """The last decision whose details say ``accepted`` (true or false) or ``skipped``."""
    trial_score: JsonDict | None = None
    """``scope``, ``n`` and ``metric`` of the last ``trial_score`` event."""
    optimizer_end: JsonDict | None = None
    """The last ``optimizer_end`` payload: optimizer, ok, error, returned, best_candidate,
    best_score (those present)."""
    return_event: str | None = None
    """The id of the last run-level ``Return ...`` decision."""
    return_decision: JsonDict | None = None
    """That decision: ``decision``, ``rationale`` and ``details.returned``."""
    pareto_updates: int = Field(default=0, ge=0)
    """Decisions whose details name a ``pareto_front``."""
    pareto_last: JsonDict | None = None
    """The last of them: ``optimizer`` and the front's ``details``."""
    pareto_displaced: tuple[str, ...] = ()
    """The candidates any of them displaced, in the order first named."""

    def then(self, later: EventSummary) -> EventSummary:
        """The summary of this summary's events followed by ``later``'s: what
        summarizing them all at once gives, so that a trial whose events arrive in
        chunks is summarized chunk by chunk::

            >>> first = EventSummary(events=2, lm_calls=1, decided="rejected")
            >>> first.then(EventSummary(events=1, pareto_displaced=("trl_a",))).decided
            'rejected'
        """
        last = {name: value for name in _LAST_WINS if (value := getattr(later, name)) is not None}
        return self.model_copy(
            update={
                "events": self.events + later.events,
                "lm_calls": self.lm_calls + later.lm_calls,
                "cache_hits": self.cache_hits + later.cache_hits,
                "candidates": self.candidates + later.candidates,
                "pareto_updates": self.pareto_updates + later.pareto_updates,
                "pareto_displaced": tuple(
                    dict.fromkeys((*self.pareto_displaced, *later.pareto_displaced))
                ),
                **last,
            }
        )


_LAST_WINS = (
    "decided",
    "trial_score",
    "optimizer_end",
    "return_event",
    "return_decision",
    "pareto_last",
)
"""The fields that the last event setting them decides (never set to None)."""


def summarize_events(events: Iterable[TraceEvent]) -> EventSummary:
    """The summary of ``events`` (a trial's, in sequence order)."""
    return _summarize((e.kind, e.id, e.payload) for e in events)


def summarize_fields(
    kinds: Iterable[str], ids: Iterable[str], payloads: Iterable[Any]
) -> EventSummary:
    """The summary of events given field by field (their kinds, ids and JSON payloads, in
    sequence order): for a writer that holds the fields, not TraceEvents."""
    return _summarize(zip(kinds, ids, payloads, strict=True))


def summarize_raw(events: Iterable[Mapping[str, Any]]) -> EventSummary:
    """The summary of events given as their JSON, parsed to plain dicts (as stored)."""
    return _summarize(_raw(events))


def _raw(events: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, str, Any]]:
    for event in events:
        yield str(event.get("kind")), str(event.get("id")), event.get("payload") or {}


def _summarize(events: Iterable[tuple[str, str, Any]]) -> EventSummary:
    """The summary of (kind, event id, payload) triples, in order."""
    count = lm_calls = cache_hits = updates = 0
    candidates: list[tuple[str, str | None]] = []
    displaced: dict[str, None] = {}
    fields: dict[str, Any] = {}
    for kind, event_id, payload in events:
        count += 1
        if kind == _LM_CALL:
            lm_calls += 1
            if payload.get("cache_hit"):
                cache_hits += 1
        elif kind == _DECISION:
            updates += _decision(event_id, payload, fields, displaced)
        elif kind == _CREATED:
            candidate, strategy = payload.get("candidate"), payload.get("strategy")
            if isinstance(candidate, str):
                candidates.append((candidate, str(strategy) if strategy else None))
        elif kind == _SCORE:
            fields["trial_score"] = {k: payload.get(k) for k in ("scope", "n", "metric")}
        elif kind == _END:
            fields["optimizer_end"] = {k: payload[k] for k in _END_KEYS if k in payload}
    return EventSummary(
        events=count,
        lm_calls=lm_calls,
        cache_hits=cache_hits,
        candidates=tuple(candidates),
        pareto_updates=updates,
        pareto_displaced=tuple(displaced),
        **fields,
    )


def _decision(
    event_id: str, payload: Any, fields: dict[str, Any], displaced: dict[str, None]
) -> int:
    """Note what views read from one decision; 1 when it updates a Pareto front."""
    details = payload.get("details")
    details = details if isinstance(details, dict) else {}
    if isinstance(details.get("accepted"), bool):
        fields["decided"] = "accepted" if details["accepted"] else "rejected"
    elif details.get("skipped") is True:
        fields["decided"] = "no change"
    text = payload.get("decision")
    if payload.get("step") is None and isinstance(text, str) and text.startswith("Return"):
        fields["return_event"] = event_id
        fields["return_decision"] = {
            "decision": text,
            "rationale": payload.get("rationale"),
            "details": {"returned": details.get("returned")},
        }
    if not isinstance(details.get("pareto_front"), list):
        return 0
    fields["pareto_last"] = {
        "optimizer": payload.get("optimizer"),
        "details": {k: details[k] for k in _FRONT_KEYS if k in details},
    }
    named = details.get("displaced")
    for trial_id in named if isinstance(named, list) else ():
        displaced[str(trial_id)] = None
    return 1
