"""The demo's one-screen summary, rendered from a record: golden files at 80 and 100 columns."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dspex.cli._demo_summary import Hints, _hypothesis, demo_summary, evaluated_pair
from dspex.ids import id_at
from dspex.model import HypothesisStatus
from tests.cli.conftest import check_golden
from tests.view.fixtures import DATA_DIR, load


@pytest.fixture(scope="module")
def demo():
    """The trimmed demo run, with the final evaluation of candidate 12 the demo ends with."""
    experiment = load(DATA_DIR / "simba_demo_trimmed.json")
    baseline, best = experiment.trials[0], experiment.trials[-1]
    trial_id = id_at("trl", 1_780_000_000_000, 99)
    optimized = baseline.replace(
        id=trial_id,
        index=18,
        name="optimized",
        parent_trial_ids=(best.id,),
        score=0.65,
        events=tuple(e.replace(trial_id=trial_id) for e in baseline.events),
    )
    return experiment.replace(trials=(*experiment.trials, optimized))


@pytest.mark.parametrize("width", [80, 100])
def test_summary_at_fixed_widths(demo, width):
    text = demo_summary(demo, hints=Hints("sqlite:///runs.db"), width=width)
    check_golden(f"demo-summary-{width}.txt", text)
    assert len(text.splitlines()) <= 30
    assert all(len(line) <= width for line in text.splitlines() if "dspex " not in line)


def test_the_baseline_and_the_optimized_program_are_found_from_roles(demo):
    baseline, optimized = evaluated_pair(demo)
    assert (baseline.name, optimized.name) == ("baseline", "optimized")


def test_a_stored_verdict_is_shown_next_to_the_status():
    hypothesis = SimpleNamespace(
        research_question="Rules beat demos",
        status=HypothesisStatus.VALIDATED,
        verdict={"outcome": "validated", "test": "exact McNemar", "p_value": 0.0039,
                 "effect": 0.6, "ci": [0.3, 0.8]},
    )  # fmt: skip
    lines = _hypothesis(hypothesis, 100)
    assert lines[0] == "Hypothesis (validated): Rules beat demos"
    assert lines[1] == "  verdict: validated (test exact McNemar, p value 0.0039, effect 0.6)"


def test_a_store_password_is_never_printed(demo):
    text = demo_summary(demo, hints=Hints("postgresql://me:s3cret@db/runs"), width=100)
    assert "s3cret" not in text
    assert "--store 'postgresql://me:***@db/runs'" in text
    assert "*** stands for the store's password" in text
