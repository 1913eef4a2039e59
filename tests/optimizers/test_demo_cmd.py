"""``dspex demo`` end to end, in-process with click's CliRunner."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from dspex import ExperimentStatus, ResultStore
from dspex.cli import main


def test_demo_runs_simba_and_archives_it():
    result = CliRunner().invoke(main, ["demo", "--store", "memory://demo-test", "--steps", "2"])
    assert result.exit_code == 0, result.output
    experiment_id = re.search(r"Experiment (exp_\w+) \(completed\)", result.output).group(1)
    archived = ResultStore.open("memory://demo-test").get_experiment(experiment_id)
    assert archived.status is ExperimentStatus.COMPLETED
    roles = [t.metadata.get("role") for t in archived.trials]
    assert roles[0] == "evaluation" and "compile" in roles and roles[-1] == "evaluation"
    baseline, final = archived.trials[0], archived.trials[-1]
    # the headline compares baseline and optimized on the same dev set, never a minibatch
    assert baseline.score_scope.name == "dev" and baseline.score_scope.n == 20
    assert baseline.score_scope.comparable_with(final.score_scope)
    assert archived.best_trial.score_scope.comparable_with(baseline.score_scope)
    assert f"Baseline:  {baseline.score:.3f} on dev (n=20)" in result.output
    assert f"Optimized: {final.score:.3f} on the same examples: " in result.output
    # ...and the sealed record answers the hypothesis
    verdict = archived.hypothesis.verdict
    assert verdict is not None and archived.hypothesis.status.value == verdict.outcome.value
    assert (verdict.baseline_trial_id, verdict.final_trial_id) == (baseline.id, final.id)
    assert f"Hypothesis {verdict.outcome.value} at alpha 0.05" in result.output
    assert f"dspex experiments show {experiment_id}" in result.output
    hint = (
        f"dspex compare {experiment_id}:0 {experiment_id}:{final.index} --store memory://demo-test"
    )
    assert hint in result.output
    compared = CliRunner().invoke(main, hint.split()[1:])
    assert compared.exit_code == 0, compared.output
    assert "difference (B - A)" in compared.output and "exact McNemar" in compared.output
    assert "dspex ui" in result.output
    best = next(t for t in archived.trials if t.id == final.parent_trial_ids[0])
    # ends with the best candidate's unified trace (abridged)
    assert f"Trial {best.index} (Score: " in result.output
    assert f"{best.name} · id {best.id}" in result.output
    assert "── Orchestration" in result.output and "Candidate created:" in result.output
    assert "Decision: Propose a new candidate from candidate" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer, compile_name, decision",
    [
        ("gepa", "GEPA compile", "Decision: Reflect on candidate "),
        ("mipro", "MIPROv2 compile", "Decision: Optuna trial "),
        ("copro", "COPRO compile", "Decision: Try depth "),
        (
            "random-search",
            "BootstrapFewShotWithRandomSearch compile",
            "Decision: Candidate for seed ",
        ),
    ],
)
def test_demo_runs_each_optimizer(optimizer, compile_name, decision):
    store = f"memory://demo-{optimizer}"
    result = CliRunner().invoke(main, ["demo", "--store", store, "--optimizer", optimizer])
    assert result.exit_code == 0, result.output
    experiment_id = re.search(r"Experiment (exp_\w+) \(completed\)", result.output).group(1)
    archived = ResultStore.open(store).get_experiment(experiment_id)
    assert archived.status is ExperimentStatus.COMPLETED
    assert compile_name in [t.name for t in archived.trials]
    final = archived.trials[-1]
    best = next(t for t in archived.trials if t.id == final.parent_trial_ids[0])
    assert best.metadata["role"] == "candidate"
    assert final.score > archived.trials[0].score
    assert f"{best.name} · id {best.id}" in result.output
    assert decision in result.output


def test_an_unknown_optimizer_is_refused_with_the_valid_names():
    result = CliRunner().invoke(main, ["demo", "--store", "memory://x", "--optimizer", "adam"])
    assert result.exit_code != 0
    assert "'adam' is not one of 'copro', 'gepa', 'mipro', 'random-search', 'simba'" in (
        result.output
    )
