"""Any payload shape renders in every format without crashing and without markup leaking."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from dspex import EventKind, Experiment, ProgramInfo, TraceEvent, Trial, new_id
from dspex.view import ExperimentView, TrialView
from tests.view.htmltree import parse

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NASTY = st.lists(
    st.sampled_from(list("ab <>&\"'/`*_#\n[]{}=") + ["<script>", "</details>"]), max_size=12
).map("".join)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | NASTY,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(NASTY, children, max_size=3),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "module",
        "class",
        "messages",
        "response",
        "usage",
        "settings",
        "error",
        "decision",
        "strategy",
        "rationale",
        "action",
        "changes",
        "example",
        "value",
        "passed",
        "score",
        "latency_ms",
        "inputs",
        "outputs",
        "details",
        "candidate",
        "parents",
        "message",
        "traceback",
    ]
)
PAYLOAD = st.dictionaries(KEYS, JSON, max_size=8)
OUR_TAGS = {
    "div",
    "ol",
    "style",
    "script",
    "header",
    "h2",
    "h3",
    "p",
    "code",
    "a",
    "section",
    "span",
    "i",
    "table",
    "tbody",
    "thead",
    "tr",
    "td",
    "th",
    "pre",
    "del",
    "ins",
    "details",
    "summary",
    "b",
    "dl",
    "dt",
    "dd",
    "time",
    "button",
    "input",
    "svg",
    "line",
    "text",
    "circle",
    "title",
    "ul",
    "li",
    "caption",
    "form",
    "label",
    "select",
    "option",
}


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(st.sampled_from(list(EventKind)), PAYLOAD, NASTY), min_size=1, max_size=6)
)
def test_arbitrary_payloads_render_everywhere(events):
    exp_id, trial_id = new_id("exp"), new_id("trl")
    records = tuple(
        TraceEvent(
            trial_id=trial_id,
            sequence=i,
            timestamp=T0 + timedelta(milliseconds=i),
            monotonic_ns=i * 1000,
            source=_source(kind),
            kind=kind,
            pid=1,
            worker=worker or "w",
            payload=payload,
        )
        for i, (kind, payload, worker) in enumerate(events)
    )
    trial = Trial(
        id=trial_id, experiment_id=exp_id, index=0, started_at=T0, events=records, name=events[0][2]
    )
    experiment = Experiment(
        id=exp_id, name="x" + events[0][2], program=ProgramInfo(name="p"), trials=(trial,)
    )
    for view in (TrialView(experiment, trial), ExperimentView(experiment)):
        doc = parse(view.to_html())
        assert {n.tag for n in doc.iter()} <= OUR_TAGS
        assert len(doc.find_all("script")) == 2
        assert view.to_markdown() and str(view)
        console = Console(width=80, record=True, color_system=None, file=io.StringIO())
        console.print(view)


def _source(kind: EventKind) -> str:
    if kind.value in ("example_result", "metric", "trial_score"):
        return "evaluation"
    if kind.value in (
        "optimizer_start",
        "optimizer_end",
        "step",
        "decision",
        "candidate_created",
        "candidate_scored",
    ):
        return "orchestration"
    return "execution"
