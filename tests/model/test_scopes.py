"""Scores are ranked only against scores over the same examples with the same metric."""

from __future__ import annotations

from dspex import ExampleResult, ScoreScope, TraceEvent, Trial, new_id, utc_now
from dspex.model import best_trial_of, reference_scope, scope_of, summarize
from dspex.model.scopes import baseline_in, comparable
from tests.model.scored import demo_like, dev, scored_trial


def test_the_best_trial_is_never_a_minibatch_score_against_a_dev_baseline():
    experiment = demo_like()
    baseline, candidate, _, final = experiment.trials
    assert candidate.score == 1.0 > final.score  # the "best trial" was a minibatch 1.0
    assert reference_scope(experiment.trials).name == "dev"
    assert best_trial_of(experiment.trials) == final
    assert baseline_in(experiment.trials, reference_scope(experiment.trials)) == baseline


def test_best_over_an_explicit_scope():
    experiment = demo_like()
    minibatch = scope_of(experiment.trials[1])
    assert best_trial_of(experiment.trials, minibatch) == experiment.trials[1]


def test_without_evaluations_the_largest_example_set_is_the_reference():
    exp_id = new_id("exp")
    trials = [
        scored_trial(exp_id, 0, [1] * 4, examples=dev(4), role="candidate", scope="minibatch"),
        scored_trial(exp_id, 1, [1, 0] * 4, examples=dev(8, 50), role="validation", scope="full"),
        scored_trial(exp_id, 2, [1, 1] * 4, examples=dev(8, 50), role="validation", scope="full"),
    ]
    assert reference_scope(trials).name == "full"
    assert best_trial_of(trials) == trials[2]


def test_the_same_examples_with_another_metric_are_not_comparable():
    exp_id = new_id("exp")
    a = scored_trial(exp_id, 0, [1, 0, 1])
    b = scored_trial(exp_id, 1, [1, 1, 1], metric="f1")
    assert not scope_of(a).comparable_with(scope_of(b))
    assert comparable([a, b], scope_of(a)) == [a]


def test_older_trials_get_their_scope_from_their_example_results():
    exp_id = new_id("exp")
    recorded = scored_trial(exp_id, 0, [1, 0, 1, 1])
    legacy = scored_trial(exp_id, 1, [0, 0, 1, 1], scope=None)
    legacy = legacy.replace(
        events=(
            TraceEvent(trial_id=legacy.id, sequence=0, timestamp=utc_now(), monotonic_ns=0,
                       source="evaluation", kind="trial_score", pid=1, worker="main",
                       payload={"score": 0.5, "metric": "exact_match", "scope": "devset"}),
        )
    )  # fmt: skip
    derived = scope_of(legacy)
    assert derived is not None and derived.name == "dev" and derived.n == 4
    assert derived.comparable_with(recorded.score_scope)


def test_a_score_without_recorded_examples_is_ranked_against_nothing():
    trial = Trial(experiment_id=new_id("exp"), index=0, score=0.9, started_at=utc_now())
    assert scope_of(trial) is None
    assert best_trial_of([trial]) is None


def test_summary_spreads_over_the_reported_trials_set_only():
    experiment = demo_like()
    summary = summarize(experiment.trials)
    assert summary.scope is not None and summary.scope.name == "dev"
    assert summary.trial_scores is not None and summary.trial_scores.n == 2  # not the minibatches
    accuracy = summary.metrics["exact_match"]
    assert accuracy.mean == experiment.trials[3].score and accuracy.ci_method == "Wilson score"


def test_failed_examples_count_as_zero_in_the_metric_spread_as_in_the_score():
    exp_id = new_id("exp")
    trial = scored_trial(exp_id, 0, [1, 1, 1, 1], failed=[0])
    assert trial.score == 0.75
    assert summarize([trial]).metrics["exact_match"].mean == 0.75


def test_scope_of_results_fingerprints_inputs_and_labels_in_any_order():
    results = [ExampleResult(index=i, inputs={"q": str(i)}, labels={"a": str(i)}) for i in range(3)]
    forward = ScoreScope.of_results(results, name="dev", metric="m")
    backward = ScoreScope.of_results(reversed(results), name="other", metric="m")
    assert forward.comparable_with(backward) and forward.n == 3
    relabelled = [r.replace(labels={"a": "x"}) if r.index == 0 else r for r in results]
    assert not forward.comparable_with(ScoreScope.of_results(relabelled, name="dev", metric="m"))
