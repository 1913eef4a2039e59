"""Records of both event formats read and render.

Format 1: what dspex recorded before payloads were typed (``data/format1``, one trimmed
experiment per optimizer recorded at 611b0fb by ``tests/model/runs.py``, and the viewer's
own fixtures). Format 2: what this dspex records, which must follow the types exactly.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import dspex
from dspex import Experiment, TraceEvent
from dspex.export import experiment_spans
from dspex.model import EventKind
from dspex.model.payloads import EVENT_FORMAT, payload_of, payload_problems
from dspex.view.html import trial_html
from dspex.view.text import timeline_text
from dspex.view.timeline import build_timeline
from tests.model.runs import OPTIMIZERS, record

HERE = Path(__file__).parent
FORMAT_1 = sorted((HERE / "data" / "format1").glob("*.json")) + sorted(
    (HERE.parent / "view" / "data").glob("*.json")
)


def event(kind: str, payload: dict) -> TraceEvent:
    """A recorded event of ``kind`` with exactly ``payload`` (keys missing as in old records)."""
    return TraceEvent(
        trial_id=dspex.new_id("trl"),
        sequence=0,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        monotonic_ns=0,
        source="orchestration" if kind == "decision" else "execution",
        kind=kind,
        pid=1,
        worker="main",
        payload=payload,
    )


@pytest.fixture(scope="module", params=FORMAT_1, ids=lambda p: p.stem)
def old(request) -> Experiment:
    return Experiment.from_json(request.param.read_text())


def test_format_1_records_say_so(old):
    assert {t.event_format for t in old.trials} == {1}


def test_format_1_records_render_in_every_view(old):
    for trial in old.trials:
        timeline = build_timeline(trial, old)
        text = timeline_text(timeline, width=400)
        assert trial_html(old, trial)
        shown = [e for b in timeline.blocks for e in b.entries]
        assert len(shown) == len(trial.events)
        for decision in filter(None, (payload_of(e, EventKind.DECISION) for e in trial.events)):
            assert decision["decision"].split("\n")[0][:30] in text
    assert sum(len(spans) for _, spans in experiment_spans(old)) >= len(old.trials)


def test_format_1_payloads_differ_from_the_types_only_by_keys_they_lack(old):
    """The types describe what dspex wrote all along: an older record may lack a key that
    was added since, nothing else."""
    found = {
        problem
        for trial in old.trials
        for e in trial.events
        for problem in payload_problems(e.kind, e.payload)
        if not problem.startswith("missing key")
    }
    assert found == set()


@pytest.fixture(scope="module", params=OPTIMIZERS)
def recorded(request) -> Experiment:
    return record(request.param, dspex.ResultStore.open("memory://"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_what_every_optimizer_records_follows_the_types_exactly(recorded):
    assert {t.event_format for t in recorded.trials} == {EVENT_FORMAT}
    problems = {
        (e.kind.value, problem)
        for trial in recorded.trials
        for e in trial.events
        for problem in payload_problems(e.kind, e.payload)
    }
    assert problems == set()
    kinds = {e.kind for t in recorded.trials for e in t.events}
    assert {EventKind.OPTIMIZER_START, EventKind.LM_CALL, EventKind.EXAMPLE_RESULT} <= kinds
    json.dumps(recorded.to_dict())
