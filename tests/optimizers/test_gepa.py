"""GEPA compiles recorded through GEPA's callbacks, checked on the archived experiment."""

from __future__ import annotations

import contextlib
import io

import dspy
import gepa
import pytest

import dspex
from dspex import ExperimentStatus
from dspex.capture.scoring import example_fields as example_split
from dspex.model import example_key, examples_fingerprint
from dspex.offline import exact_match_with_feedback
from dspex.optimizers.gepa import MIN_GEPA, gepa_version

from .conftest import QA, events_of, role
from .scripted import Router, scripted_lm, scripted_metric, topics


def _proposes_through_a_dspy_module() -> bool:
    """DSPy 3.4 asks for new instructions through a ``Predict`` of its own signature (named
    ``Predict(ProposeInstruction)``); 3.2 and 3.3 through gepa's
    ``InstructionProposalSignature``, which calls the LM itself (named by the LM)."""
    from dspy.teleprompt.gepa import gepa_utils

    return not hasattr(gepa_utils, "InstructionProposalSignature")


def reflection_calls(lm) -> str:
    """The name GEPA's reflection calls are recorded under."""
    return "Predict(ProposeInstruction)" if _proposes_through_a_dspy_module() else type(lm).__name__


OLD_GEPA = (gepa_version() or MIN_GEPA) < MIN_GEPA
offline_reflection = pytest.mark.skipif(
    not _proposes_through_a_dspy_module(),
    reason="the offline and scripted LMs answer DSPy 3.4's Predict(ProposeInstruction), "
    "not the prompt of gepa's own InstructionProposalSignature that DSPy 3.2 and 3.3 "
    "send: GEPA finds no better candidate there; what dspex records of GEPA on DSPy 3.3 "
    "is checked against GEPA's result by tests/contract/test_optimizers.py",
)
full_record = pytest.mark.skipif(
    OLD_GEPA,
    reason="gepa < 0.1 (DSPy 3.2 pins gepa 0.0.27): GEPA is recorded in degraded mode, "
    "checked by test_the_record_is_full_or_says_it_is_degraded",
)


def _gepa(lm, **settings):
    settings = {
        "metric": exact_match_with_feedback,
        "max_metric_calls": 150,
        "reflection_lm": lm,
        "num_threads": 2,
        "track_stats": True,
        **settings,
    }
    return dspy.GEPA(**settings)


def _compile(optimizer, program, train, val):
    with contextlib.redirect_stderr(io.StringIO()):  # GEPA's progress bar
        return optimizer.compile(program, trainset=train, valset=val)


@pytest.fixture(scope="module")
def recorded(arith):
    """One recorded GEPA compile on the offline LM, shared by the read-only tests below."""
    train, dev = arith
    lm = dspex.offline_lm()
    store = dspex.ResultStore.open("memory://")
    with dspy.context(lm=lm):
        with dspex.experiment("gepa", program=QA(), program_name="qa", store=store) as exp:
            optimized = _compile(_gepa(lm), QA(), train, dev)
    return lm, optimized, store.get_experiment(exp.id), dev


def _candidates(archived):
    """GEPA candidate index -> its trial."""
    return {
        t.metadata["candidate"]: t
        for t in role(archived, "candidate")
        if "candidate" in t.metadata and t.metadata.get("accepted", True)
    }


def test_every_call_is_recorded_once_and_named_by_its_module_path(recorded):
    lm, _, archived, _ = recorded
    assert archived.status is ExperimentStatus.COMPLETED
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    assert len(calls) == lm.engine.calls > 0
    assert {e.payload["module"] for e in calls} == {"qa.predict", reflection_calls(lm)}


@full_record
@offline_reflection
def test_candidates_and_parents_are_what_gepa_returned(recorded):
    _, optimized, archived, dev = recorded
    details = optimized.detailed_results
    candidates = _candidates(archived)
    assert sorted(candidates) == list(range(len(details.candidates)))
    valset = examples_fingerprint(example_key(*example_split(ex)) for ex in dev)
    validations = {t.parent_trial_ids[0]: t for t in role(archived, "validation")}
    for index, program in enumerate(details.candidates):
        trial = candidates[index]
        parents = [candidates[p].id for p in details.parents[index] if p is not None]
        assert list(trial.parent_trial_ids) == parents
        assert (
            trial.variables.predictors["qa.predict"].instructions
            == program.predict.signature.instructions
        )
        validation = validations[trial.id]
        assert validation.name == f"valset evaluation of candidate {index}"
        assert validation.score == pytest.approx(details.val_aggregate_scores[index])
        assert (
            validation.score_scope.fingerprint == valset and len(validation.example_results) == 20
        )
        scored = events_of(validation, "candidate_scored")[0].payload
        assert scored["candidate"] == trial.id and scored["scope"] == "full"
    assert details.val_aggregate_scores[details.best_idx] > details.val_aggregate_scores[0]
    assert optimized.dspex_trial_id == candidates[details.best_idx].id
    compile_trial = role(archived, "compile")[0]
    end = events_of(compile_trial, "optimizer_end")[0].payload
    assert end["best_candidate"] == optimized.dspex_trial_id
    assert end["best_score"] == pytest.approx(details.val_aggregate_scores[details.best_idx])
    assert end["budget"]["metric_calls_used"] >= 150 - 20


@full_record
@offline_reflection
def test_a_reflection_reads_as_proposal_minibatch_before_after_and_verdict(recorded):
    lm, _, archived, _ = recorded
    accepted = [t for t in _candidates(archived).values() if t.metadata["candidate"] > 0]
    assert accepted
    for trial in accepted:
        kinds = [e.kind.value for e in trial.events]
        decisions = events_of(trial, "decision")
        titles = [d.payload["decision"] for d in decisions]
        assert titles[0].startswith("Propose a new candidate from candidate ")
        assert titles[1].startswith("Reflect on candidate ")
        assert titles[2] == "New instruction for qa.predict"
        assert titles[3] == f"Iteration {trial.metadata['iteration']} proposal accepted"
        before = [e for e in events_of(trial, "example_result") if e.payload["phase"] == "before"]
        after = [e for e in events_of(trial, "example_result") if e.payload["phase"] == "after"]
        assert len(before) == len(after) == len(trial.example_results) == 3
        reflect, new, verdict = decisions[1], decisions[2], decisions[3]
        feedback = [e.payload["feedback"] for e in before if not e.payload["passed"]]
        assert feedback and all(text in reflect.payload["rationale"] for text in feedback)
        reflection = [
            e for e in events_of(trial, "lm_call") if e.payload["module"] == reflection_calls(lm)
        ]
        assert len(reflection) == 1
        assert max(e.sequence for e in before) < reflect.sequence < reflection[0].sequence
        assert reflection[0].sequence < new.sequence < kinds.index("candidate_created")
        instruction = trial.variables.predictors["qa.predict"].instructions
        assert new.payload["action"] == instruction
        assert instruction in reflection[0].payload["response"][0]
        change = events_of(trial, "candidate_created")[0].payload["changes"][0]
        assert change["field"] == "instructions" and change["after"] == instruction
        assert min(e.sequence for e in after) > kinds.index("candidate_created")
        details = verdict.payload["details"]
        assert details["accepted"] and details["minibatch_after"] > details["minibatch_before"]
        assert details["minibatch_before"] == sum(e.payload["value"] for e in before)
        assert "strictly greater" in verdict.payload["rationale"]
        scored = events_of(trial, "candidate_scored")[0].payload
        assert scored["scope"] == "minibatch" and trial.score_scope.name == "minibatch"
        score = events_of(trial, "trial_score")[0].payload
        assert score["fingerprint"] == scored["fingerprint"] == trial.score_scope.fingerprint
        assert score["score"] == trial.score == details["minibatch_after"] / 3


@full_record
@offline_reflection
def test_rejected_proposals_and_skipped_iterations_say_why(recorded):
    _, _, archived, _ = recorded
    rejected = [t for t in role(archived, "candidate") if t.metadata.get("accepted") is False]
    assert rejected
    for trial in rejected:
        verdict = events_of(trial, "decision")[-1].payload
        assert (
            verdict["decision"].endswith("proposal rejected") and verdict["action"] == "Discard it"
        )
        assert "not better than old score" in verdict["rationale"]
        assert verdict["details"]["minibatch_after"] <= verdict["details"]["minibatch_before"]
        assert trial.name.startswith("iteration ") and len(trial.example_results) == 3
    skipped = role(archived, "iteration")
    assert skipped and all(t.name.endswith(("(skipped)", "(no proposal)")) for t in skipped)
    assert all(t.score is None and len(t.example_results) == 3 for t in skipped)
    perfect = [t for t in skipped if t.metadata.get("skipped") == "all_scores_perfect"]
    assert perfect and all(
        events_of(t, "decision")[-1].payload["decision"].endswith("all scores perfect")
        for t in perfect
    )


@full_record
def test_steps_pareto_front_and_budget_are_on_the_compile_trial(recorded):
    _, optimized, archived, _ = recorded
    compile_trial = role(archived, "compile")[0]
    steps = events_of(compile_trial, "step")
    iterations = [t.metadata["iteration"] for t in archived.trials if "iteration" in t.metadata]
    assert [s.payload["step"] for s in steps] == sorted(iterations)
    used = [s.payload["details"]["metric_calls_used"] for s in steps]
    assert used == sorted(used) and used[0] >= 20
    fronts = [
        e.payload for e in events_of(compile_trial, "decision") if e.payload["strategy"] == "pareto"
    ]
    assert len(fronts) == len(optimized.detailed_results.candidates)
    end = events_of(compile_trial, "optimizer_end")[0].payload
    assert fronts[-1]["details"]["pareto_front"] == end["pareto_front"]
    candidates = _candidates(archived)
    best_on = optimized.detailed_results.per_val_instance_best_candidates
    expected = {candidates[i].id for ids in best_on.values() for i in ids}
    assert set(end["pareto_front"]) == expected


def test_the_record_is_full_or_says_it_is_degraded(recorded):
    """With gepa 0.1 and later, no warning and GEPA's candidates; with an older gepa, the
    warning names it, and the compile trial keeps every LM call and GEPA's evaluations."""
    lm, _, archived, _ = recorded
    assert archived.status is ExperimentStatus.COMPLETED
    if not OLD_GEPA:
        assert archived.warnings == () or not archived.warnings
        assert _candidates(archived)
        return
    from importlib import metadata

    (warning,) = [w for w in archived.warnings if "degraded mode" in w]
    assert f"gepa {metadata.version('gepa')}" in warning and "GEPA" in warning
    assert role(archived, "compile") and not _candidates(archived)
    evaluations = role(archived, "evaluation")
    assert evaluations and all(t.score is not None for t in evaluations)
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    assert len(calls) == lm.engine.calls > 0


def test_the_program_is_the_one_gepa_returns_without_dspex(recorded, arith):
    _, optimized, _, _ = recorded
    train, dev = arith
    lm = dspex.offline_lm()
    with dspy.context(lm=lm):
        plain = _compile(_gepa(lm), QA(), train, dev)
    assert plain.dump_state() == {
        k: v for k, v in optimized.dump_state().items() if k != "dspex_trial_id"
    }
    assert plain.detailed_results.parents == optimized.detailed_results.parents


def test_the_users_callbacks_keep_receiving_every_event(lm, arith, store):
    train, dev = arith
    seen = []

    class Mine:
        def on_iteration_start(self, event):
            seen.append(event["iteration"])

    kwargs = {"callbacks": [Mine()]}
    optimizer = _gepa(lm, max_metric_calls=40, gepa_kwargs=kwargs)
    before = gepa.optimize
    with dspex.experiment("gepa-callbacks", program=QA(), store=store) as exp:
        _compile(optimizer, QA(), train[:8], dev[:5])
    assert seen and seen == sorted(seen)
    assert optimizer.gepa_kwargs is kwargs and len(kwargs["callbacks"]) == 1
    archived = store.get_experiment(exp.id)
    compile_trial = role(archived, "compile")[0]
    # one step per iteration; none in degraded mode (gepa < 0.1), where the user's
    # callbacks still receive every event
    assert len(events_of(compile_trial, "step")) == (0 if OLD_GEPA else len(seen))
    assert gepa.optimize is before


@full_record
@offline_reflection
def test_a_merge_has_two_parents_and_a_verdict_with_an_lm_written_here(store):
    lm = scripted_lm()
    with dspy.context(lm=lm):
        with dspex.experiment(
            "gepa-merge", program=Router(), program_name="router", store=store
        ) as exp:
            optimized = _compile(
                _gepa(lm, metric=scripted_metric, max_metric_calls=120, num_threads=1, seed=2),
                Router(),
                topics(),
                topics(),
            )
    archived = store.get_experiment(exp.id)
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    assert len(calls) == lm.engine.calls
    assert {e.payload["module"] for e in calls} == {
        "router.first",
        "router.second",
        reflection_calls(lm),
    }
    details = optimized.detailed_results
    merged = [i for i, parents in enumerate(details.parents) if len(parents) == 2]
    assert merged, details.parents
    candidates = _candidates(archived)
    trial = candidates[merged[0]]
    assert trial.parent_trial_ids == tuple(candidates[p].id for p in details.parents[merged[0]])
    decisions = [e.payload for e in events_of(trial, "decision")]
    assert decisions[0]["strategy"] == "merge" and decisions[0]["decision"].startswith("Merge ")
    assert decisions[-1]["decision"].endswith("merge accepted")
    created = events_of(trial, "candidate_created")[0].payload
    assert created["strategy"] == "merge" and len(created["parents"]) == 2
    # a reflection on a component no minibatch example went through proposes nothing
    empty = [t for t in role(archived, "iteration") if t.name.endswith("(no proposal)")]
    assert empty and all(
        "no reflective dataset" in events_of(t, "decision")[-1].payload["rationale"] for t in empty
    )
    program = details.candidates[merged[0]]
    for name in ("first", "second"):
        assert (
            trial.variables.predictors[f"router.{name}"].instructions
            == getattr(program, name).signature.instructions
        )
