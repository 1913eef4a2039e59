"""COPRO compiles recorded with the offline LM, checked on the archived experiment."""

from __future__ import annotations

import re

import dspy
import pytest

import dspex
from dspex import ExperimentStatus
from dspex.offline import exact_match

from .conftest import QA, events_of, role
from .scripted import Router, scripted_lm, scripted_metric, topics

EVAL = {"num_threads": 2, "display_progress": False}

pytestmark = pytest.mark.slow  # a 12-candidate COPRO run on 32 examples, and its twin


def _copro(**settings):
    return dspy.COPRO(metric=exact_match, breadth=4, depth=3, init_temperature=1.4, **settings)


@pytest.fixture(scope="module")
def recorded(arith):
    train, _ = arith
    lm = dspex.offline_lm()
    store = dspex.ResultStore.open("memory://")
    with dspy.context(lm=lm):
        with dspex.experiment("copro", program=QA(), program_name="qa", store=store) as exp:
            optimized = _copro().compile(QA(), trainset=train, eval_kwargs=EVAL)
    return lm, optimized, store.get_experiment(exp.id)


def _completions(call, field="proposed_instruction"):
    marker = re.compile(rf"\[\[ ## {field} ## \]\]\n(.*?)\n\n\[\[ ## ", re.S)
    return [marker.search(text).group(1) for text in call.payload["response"]]


def test_every_request_is_recorded_once(recorded):
    lm, _, archived = recorded
    assert archived.status is ExperimentStatus.COMPLETED
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    # COPRO asks for n candidates at once: one LM call, n requests, n completions
    assert sum(len(e.payload["response"]) for e in calls) == lm.engine.calls
    assert len(calls) == len(lm.history)
    assert {e.payload["module"] for e in calls} == {
        "qa.predict",
        "Predict(BasicGenerateInstruction)",
        "Predict(GenerateInstructionGivenAttempts)",
    }


def test_each_candidate_names_the_proposal_call_and_completion_it_came_from(recorded):
    _, _, archived = recorded
    compile_trial = role(archived, "compile")[0]
    calls = {e.id: e for e in events_of(compile_trial, "lm_call")}
    candidates = [t for t in role(archived, "candidate") if "depth" in t.metadata]
    assert [t.metadata["depth"] for t in candidates] == [1] * 4 + [2] * 4 + [3] * 4
    for trial in candidates:
        decision = events_of(trial, "decision")[0].payload["details"]
        instruction = trial.variables.predictors["qa.predict"].instructions
        assert decision["instruction"] == instruction
        if trial.name.endswith("(original instruction)"):
            assert decision["proposal_call"] is None
            assert instruction == QA().predict.signature.instructions
            continue
        call = calls[decision["proposal_call"]]
        expected = "Basic" if trial.metadata["depth"] == 1 else "GivenAttempts"
        assert expected in call.payload["module"]
        assert _completions(call)[decision["completion"]] == instruction
        prefix = _completions(call, "proposed_prefix_for_output_field")[decision["completion"]]
        assert decision["prefix"] == prefix
        created = events_of(trial, "candidate_created")[0].payload
        fields = {c["field"]: c["after"] for c in created["changes"]}
        assert fields.get("instructions", instruction) == instruction
        scored = events_of(trial, "candidate_scored")[0].payload
        assert scored["scope"] == "full" and scored["n"] == 32
        assert scored["copro_score"] == pytest.approx(100 * trial.score, abs=0.01)


def test_each_depth_keeps_the_best_and_the_next_depth_builds_on_it(recorded):
    _, optimized, archived = recorded
    compile_trial = role(archived, "compile")[0]
    by_id = {t.id: t for t in archived.trials}
    kept = [
        e.payload for e in events_of(compile_trial, "decision") if e.payload["step"] is not None
    ]
    assert [d["step"] for d in kept] == [1, 2, 3]
    student = next(t for t in role(archived, "candidate") if t.name == "student")
    candidates = [t for t in role(archived, "candidate") if "depth" in t.metadata]
    for trial in candidates:
        depth = trial.metadata["depth"]
        parent = student.id if depth == 1 else kept[depth - 2]["details"]["winner"]
        assert trial.parent_trial_ids == (parent,)
    for decision in kept:
        winner = by_id[decision["details"]["winner"]]
        assert winner.score == max(decision["details"]["scores"].values())
    depth_scores = {d: [t.score for t in candidates if t.metadata["depth"] == d] for d in (1, 3)}
    assert max(depth_scores[3]) > max(depth_scores[1])
    end = events_of(compile_trial, "optimizer_end")[0].payload
    best = by_id[optimized.dspex_trial_id]
    assert end["best_candidate"] == best.id and end["best_score"] == best.score
    assert best.variables.predictors["qa.predict"].instructions == (
        optimized.predict.signature.instructions
    )


def test_the_program_is_the_one_copro_returns_without_dspex(recorded, arith):
    _, optimized, _ = recorded
    with dspy.context(lm=dspex.offline_lm()):
        plain = _copro().compile(QA(), trainset=arith[0], eval_kwargs=EVAL)
    assert plain.dump_state() == optimized.dump_state()
    assert [c["score"] for c in plain.candidate_programs] == [
        c["score"] for c in optimized.candidate_programs
    ]


def test_several_predictors_with_an_lm_written_here(store):
    lm = scripted_lm()
    with dspy.context(lm=lm):
        with dspex.experiment(
            "copro-2", program=Router(), program_name="router", store=store
        ) as exp:
            dspy.COPRO(metric=scripted_metric, breadth=2, depth=2).compile(
                Router(), trainset=topics(), eval_kwargs={"display_progress": False}
            )
    archived = store.get_experiment(exp.id)
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    assert sum(len(e.payload["response"]) for e in calls) == lm.engine.calls
    names = [t.name for t in role(archived, "candidate") if "depth" in t.metadata]
    assert any(n.endswith("for router.first") for n in names)
    assert any("for router.second" in n for n in names)
