"""What a trial's trace must look like, worked out from the records alone.

These restate the mapping of ``docs/interop.md`` independently of ``dspex.export``: the
events that become spans, and the span each one nests under.
"""

from __future__ import annotations

from dspex import TraceEvent, Trial

SPAN_KINDS = {"module_start", "lm_call", "adapter_format", "adapter_parse", "tool_call",
              "retrieval", "embedding", "example_result"}  # fmt: skip


def span_events(trial: Trial) -> list[TraceEvent]:
    """The events that open a span: calls, examples, and a module_end without its start."""
    starts = {e.id for e in trial.events if e.kind == "module_start"}
    return [
        e
        for e in trial.events
        if e.kind.value in SPAN_KINDS
        or (e.kind == "module_end" and e.payload.get("start_id") not in starts)
    ]


def expected_span_count(trial: Trial) -> int:
    return 1 + len(span_events(trial))  # and the trial's own span


def expected_parent(trial: Trial, event: TraceEvent) -> str | None:
    """The id of the event whose span encloses ``event``'s; None for the trial's span.

    A program run an example scored is under that example (``scored_runs``, whose pairs
    ``test_mapping`` checks against the records on their own)."""
    from dspex.model.spans import span_tree

    scored = span_tree(trial.events).scored_runs
    if event.id in scored:
        return scored[event.id]
    opening = {e.id for e in span_events(trial)}
    by_id = {e.id: e for e in trial.events}
    current = event.parent_id
    while current is not None and current in by_id:
        if current in opening:
            return current
        current = by_id[current].parent_id
    return None


def events_of(trial: Trial, kind: str) -> list[TraceEvent]:
    return [e for e in trial.events if e.kind.value == kind]


def created_candidate(trial: Trial) -> dict | None:
    """The candidate_created payload that names ``trial`` itself, if any."""
    for event in events_of(trial, "candidate_created"):
        if event.payload.get("candidate") == trial.id:
            return dict(event.payload)
    return None
