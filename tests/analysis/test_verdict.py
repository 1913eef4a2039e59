"""Hypothesis verdicts: validated, rejected or inconclusive at analysis.alpha."""

from __future__ import annotations

import pytest

import dspex
from dspex import Hypothesis, HypothesisStatus, NotComparableError, VerdictOutcome, new_id
from dspex.analysis import verdict_pair, with_verdict
from tests.model.scored import demo_like, dev, experiment_of, scored_trial

QUESTION = Hypothesis(research_question="Does SIMBA beat the zero-shot baseline?", status="active")


def _experiment(baseline, final, **fields):
    exp_id = new_id("exp")
    trials = [
        scored_trial(exp_id, 0, baseline, name="baseline"),
        scored_trial(exp_id, 1, [1] * 4, examples=dev(4, 60), role="candidate", scope="minibatch"),
        scored_trial(exp_id, 2, final, name="optimized", parents=("trl_" + "0" * 26,)),
    ]
    return experiment_of(trials, exp_id, hypothesis=QUESTION, **fields)


def test_a_significant_improvement_validates_the_hypothesis():
    experiment = with_verdict(demo_like().replace(hypothesis=QUESTION))
    verdict = experiment.hypothesis.verdict
    assert verdict is not None and verdict.outcome is VerdictOutcome.VALIDATED
    assert experiment.hypothesis.status is HypothesisStatus.VALIDATED
    baseline, *_, final = experiment.trials
    assert (verdict.baseline_trial_id, verdict.final_trial_id) == (baseline.id, final.id)
    assert verdict.test == "exact McNemar" and verdict.p_value == pytest.approx(2 / 2**8)
    assert verdict.effect == pytest.approx(0.4) and verdict.n == 20 and verdict.alpha == 0.05
    assert verdict.ci_low is not None and 0 < verdict.ci_low < verdict.effect < verdict.ci_high
    assert verdict.scope.name == "dev"
    assert "dev" in verdict.reason and "< alpha 0.05" in verdict.reason


def test_a_significant_loss_rejects_it():
    experiment = with_verdict(_experiment([1] * 12, [0] * 10 + [1, 1]))
    assert experiment.hypothesis.verdict.outcome is VerdictOutcome.REJECTED
    assert experiment.hypothesis.status is HypothesisStatus.REJECTED


def test_a_small_difference_is_inconclusive_whatever_the_means_say():
    experiment = with_verdict(_experiment([1, 0, 1, 0, 1, 0], [1, 1, 1, 0, 1, 0]))
    verdict = experiment.hypothesis.verdict
    assert verdict.effect > 0 and verdict.outcome is VerdictOutcome.INCONCLUSIVE
    assert "not below alpha" in verdict.reason


def test_alpha_comes_from_the_configuration():
    experiment = _experiment([1, 0] * 6, [1] * 12)  # 6 wins, no loss: p = 2 / 2**6 = 0.031
    assert dspex.verdict_of(experiment).outcome is VerdictOutcome.VALIDATED
    with dspex.config.overrides(analysis={"alpha": 0.01}):
        assert dspex.verdict_of(experiment).outcome is VerdictOutcome.INCONCLUSIVE
    assert dspex.verdict_of(experiment, alpha=0.01).alpha == 0.01
    with pytest.raises(dspex.ValidationError, match="alpha"):
        dspex.verdict_of(experiment, alpha=1.5)


def test_no_verdict_without_a_baseline_and_a_final_evaluation_on_one_set():
    exp_id = new_id("exp")
    only_baseline = experiment_of([scored_trial(exp_id, 0, [1, 0])], exp_id, hypothesis=QUESTION)
    assert verdict_pair(only_baseline) is None
    assert with_verdict(only_baseline) == only_baseline
    assert with_verdict(demo_like()).hypothesis is None  # no hypothesis: nothing to decide


def test_explicit_trials_can_be_judged_and_must_be_comparable():
    experiment = demo_like().replace(hypothesis=QUESTION)
    baseline, candidate, _, final = experiment.trials
    verdict = dspex.verdict_of(experiment, baseline=baseline.id, final=final)
    assert verdict == dspex.verdict_of(experiment)  # the same pair, the same record
    with pytest.raises(NotComparableError):
        dspex.verdict_of(experiment, baseline=baseline, final=candidate)
    with pytest.raises(dspex.ValidationError, match="both"):
        dspex.verdict_of(experiment, baseline=baseline)


def test_a_verdict_round_trips_through_json():
    experiment = with_verdict(demo_like().replace(hypothesis=QUESTION))
    assert dspex.Experiment.from_json(experiment.to_json()) == experiment
