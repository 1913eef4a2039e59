"""The fixture generator is deterministic and the data file is what it generates."""

from __future__ import annotations

from tests.view.fixtures import DATA_DIR, XSS, large_experiment, simba_experiment


def test_generator_is_deterministic():
    assert simba_experiment().to_json() == simba_experiment().to_json()


def test_data_file_matches_the_generator():
    # Regenerate with: python -m tests.view.fixtures tests/view/data/simba_small.json
    stored = (DATA_DIR / "simba_small.json").read_text(encoding="utf-8").strip()
    assert stored == simba_experiment().to_json()


def test_fixture_covers_what_the_viewer_shows(simba):
    kinds = {e.kind.value for t in simba.trials for e in t.events}
    assert {
        "step",
        "decision",
        "candidate_created",
        "candidate_scored",
        "module_start",
        "module_end",
        "lm_call",
        "example_result",
        "trial_score",
    } <= kinds
    strategies = {
        e.payload.get("strategy")
        for t in simba.trials
        for e in t.events
        if e.kind.value == "decision"
    }
    assert strategies == {"append_a_rule", "append_a_demo"}
    assert any(r.error for t in simba.trials for r in t.example_results)
    responses = [
        r
        for t in simba.trials
        for e in t.events
        if e.kind.value == "lm_call"
        for r in e.payload["response"]
    ]
    questions = [r.inputs["question"] for t in simba.trials for r in t.example_results]
    assert all(any(x in r for r in responses) for x in XSS)
    assert any(XSS[1] in q for q in questions)
    assert XSS[0] in simba.name


def test_large_experiment_has_over_2000_events():
    assert len(large_experiment().trials[0].events) > 2000
