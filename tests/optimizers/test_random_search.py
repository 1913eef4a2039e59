"""BootstrapFewShotWithRandomSearch compiles recorded with the offline LM."""

from __future__ import annotations

import contextlib
import io

import dspy
import pytest

import dspex
from dspex import ExperimentStatus
from dspex.capture.scoring import example_fields as example_split
from dspex.model import example_key, examples_fingerprint
from dspex.offline import exact_match

from .conftest import QA, events_of, role
from .scripted import Router, scripted_lm, scripted_metric, topics

SEEDS = [-3, -2, -1, 0, 1, 2]


def _search(**settings):
    settings = {
        "metric": exact_match,
        "max_bootstrapped_demos": 3,
        "max_labeled_demos": 3,
        "num_candidate_programs": 3,
        "num_threads": 2,
        **settings,
    }
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its settings
        return dspy.BootstrapFewShotWithRandomSearch(**settings)


def _compile(optimizer, program, train, val):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return optimizer.compile(program, trainset=train, valset=val)


@pytest.fixture(scope="module")
def recorded(arith):
    train, dev = arith
    lm = dspex.offline_lm()
    store = dspex.ResultStore.open("memory://")
    with dspy.context(lm=lm):
        with dspex.experiment("search", program=QA(), program_name="qa", store=store) as exp:
            optimized = _compile(_search(), QA(), train, dev)
    return lm, optimized, store.get_experiment(exp.id), dev


def _by_seed(archived):
    return {t.metadata["seed"]: t for t in role(archived, "candidate") if "seed" in t.metadata}


def test_every_call_is_recorded_once_and_named_by_path(recorded):
    lm, _, archived, _ = recorded
    assert archived.status is ExperimentStatus.COMPLETED
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    assert len(calls) == lm.engine.calls > 0
    assert {e.payload["module"] for e in calls} == {"qa.predict"}


def test_one_candidate_per_seed_with_its_demos_score_and_builder(recorded):
    _, optimized, archived, dev = recorded
    by_id = {t.id: t for t in archived.trials}
    seeds = _by_seed(archived)
    assert sorted(seeds) == SEEDS
    compile_trial = next(t for t in role(archived, "compile") if t.name.startswith("Bootstrap"))
    valset = examples_fingerprint(example_key(*example_split(ex)) for ex in dev)
    scores = {c["seed"]: c["score"] for c in optimized.candidate_programs}
    programs = {c["seed"]: c["program"] for c in optimized.candidate_programs}
    for seed, trial in seeds.items():
        parents = () if seed == -3 else (seeds[-3].id,)
        assert trial.parent_trial_ids == parents
        assert trial.score == pytest.approx(scores[seed] / 100)
        assert trial.score_scope.fingerprint == valset and len(trial.example_results) == 20
        demos = [d.toDict() for d in programs[seed].predict.demos]
        assert [dict(d) for d in trial.variables.predictors["qa.predict"].demos] == demos
        decision = events_of(trial, "decision")[0].payload
        built_by = decision["details"]["built_by"]
        if seed == -3:
            assert built_by is None and demos == []
            continue
        builder = by_id[built_by]
        expected = "LabeledFewShot compile" if seed == -2 else "BootstrapFewShot compile"
        assert builder.name == expected and builder.parent_trial_ids == (compile_trial.id,)
        created = events_of(trial, "candidate_created")[0].payload
        assert created["changes"][0]["field"] == "demos" and created["changes"][0]["after"]


def test_the_winner_is_a_decision_with_the_scores_it_beat(recorded):
    _, optimized, archived, _ = recorded
    seeds = _by_seed(archived)
    compile_trial = next(t for t in role(archived, "compile") if t.name.startswith("Bootstrap"))
    (winner,) = [e.payload for e in events_of(compile_trial, "decision")]
    first_best = max(SEEDS, key=lambda s: (seeds[s].score, -SEEDS.index(s)))
    assert optimized.dspex_trial_id == seeds[first_best].id
    assert winner["decision"] == f"Return {seeds[first_best].name}"
    for seed, trial in seeds.items():
        if seed != first_best:
            assert f"{trial.name}: {trial.score:g}" in winner["rationale"]
    end = events_of(compile_trial, "optimizer_end")[0].payload
    assert end["best_candidate"] == seeds[first_best].id
    assert end["best_score"] == seeds[first_best].score


def test_the_program_is_the_one_the_search_returns_without_dspex(recorded, arith):
    _, optimized, _, _ = recorded
    train, dev = arith
    with dspy.context(lm=dspex.offline_lm()):
        plain = _compile(_search(), QA(), train, dev)
    assert plain.dump_state() == optimized.dump_state()


def test_stopping_early_is_said(lm, arith, store):
    train, dev = arith
    with dspex.experiment("search-stop", program=QA(), store=store) as exp:
        _compile(_search(stop_at_score=50.0), QA(), train, dev)
    archived = store.get_experiment(exp.id)
    compile_trial = next(t for t in role(archived, "compile") if t.name.startswith("Bootstrap"))
    (winner,) = [e.payload for e in events_of(compile_trial, "decision")]
    assert winner["details"]["stopped_early"] is True
    assert "stop_at_score 50.0" in winner["rationale"]
    assert len(_by_seed(archived)) < len(SEEDS)


def test_an_lm_written_here_is_counted_exactly(store):
    lm = scripted_lm()
    with dspy.context(lm=lm):
        with dspex.experiment("search-2", program=Router(), store=store) as exp:
            _compile(_search(metric=scripted_metric, num_threads=1), Router(), topics(), topics())
    archived = store.get_experiment(exp.id)
    assert sum(len(events_of(t, "lm_call")) for t in archived.trials) == lm.engine.calls > 0
