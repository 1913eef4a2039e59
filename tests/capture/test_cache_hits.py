"""An LM call answered from DSPy's cache is recorded as one, with DSPy's cache on.

It is still an LM call (counted), with no tokens and no cost, marked ``cache_hit: true``;
the timeline, the waterfall, the summaries (hit rate) and the OTLP export say so.
"""

from __future__ import annotations

import uuid

import dspy
import pytest

import dspex
from dspex import EventKind
from dspex.export import trial_spans
from dspex.offline import ArithQA
from dspex.view.text import experiment_text
from dspex.view.timeline import build_timeline
from dspex.view.waterfall import timeline_waterfall

from .conftest import AdditionEngine, addition_lm


def _questions(n: int) -> list[str]:
    # unique: DSPy's cache lives as long as the process (and on disk); a question asked
    # before in this run would hit where the test expects a miss
    tag = uuid.uuid4().hex[:8]
    return [f"What is {i} + {i}? ({tag})" for i in range(n)]


def _run_twice(store, lm) -> tuple[dspex.Experiment, list[str]]:
    questions = _questions(3)
    program = ArithQA()
    with dspy.context(lm=lm), dspex.experiment("cache", program=program, store=store) as exp:
        for question in questions + questions:
            program(question=question)
    return store.get_experiment(exp.id), questions


def _calls(experiment: dspex.Experiment) -> list:
    return [e for t in experiment.trials for e in t.events if e.kind is EventKind.LM_CALL]


def _offline_cached():
    lm = dspex.offline_lm(cache=True)
    return lm, lm.engine


def _own_engine_cached():
    engine = AdditionEngine()
    lm = addition_lm(engine, "test/addition-cached", cache=True)
    return lm, engine


@pytest.mark.parametrize("make_lm", [_offline_cached, _own_engine_cached], ids=["offline", "own"])
def test_a_cache_hit_is_a_call_with_no_tokens_and_no_cost(make_lm, store):
    lm, engine = make_lm()
    experiment, questions = _run_twice(store, lm)
    calls = _calls(experiment)
    assert engine.calls == 3  # the engine answered each question once
    assert len(calls) == 6  # every call is recorded
    assert [c.payload["cache_hit"] for c in calls] == [False] * 3 + [True] * 3
    for miss in calls[:3]:
        assert miss.payload["usage"]["total_tokens"] > 0
    for hit in calls[3:]:
        assert hit.payload["usage"] == {} and hit.payload["cost"] == 0.0
        assert hit.payload["response"] == next(
            c.payload["response"]
            for c in calls[:3]
            if c.payload["messages"] == hit.payload["messages"]
        )


def test_cache_hits_show_in_every_view_and_the_export(store):
    lm, _ = _offline_cached()
    experiment, _ = _run_twice(store, lm)
    (trial,) = experiment.trials
    timeline = build_timeline(trial, experiment)
    assert timeline.lm_call_count == 6 and timeline.cache_hit_count == 3
    summary = experiment_text(experiment)
    assert "LM calls" in summary and "6 (3 from DSPy's cache, hit rate 50%)" in summary
    labels = [row.label for row in timeline_waterfall(timeline).rows if row.span.kind == "lm_call"]
    assert sum(label.endswith("(cache hit)") for label in labels) == 3
    html = dspex.TraceViewer().view_trial(experiment.id, trial.id, store=store).to_html()
    assert "3 from DSPy&#39;s cache" in html or "3 from DSPy's cache" in html
    spans = [s for s in trial_spans(trial, experiment) if s.kind == "client"]
    hits = [s for s in spans if s.attributes.get("dspex.cache_hit") is True]
    assert len(spans) == 6 and len(hits) == 3
    assert all("llm.token_count.total" not in s.attributes for s in hits)
    assert all(s.attributes.get("llm.cost.total", 0.0) == 0.0 for s in hits)
