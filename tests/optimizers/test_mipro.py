"""MIPROv2 compiles recorded with the offline LM."""

from __future__ import annotations

import dspy
import dspy.teleprompt.mipro_optimizer_v2 as mipro_module
import pytest
from dspy.propose import GroundedProposer
from dspy.propose.grounded_proposer import TIPS
from dspy.teleprompt import utils as teleprompt_utils

import dspex
from dspex.capture.scoring import example_fields as example_split
from dspex.model import example_key, examples_fingerprint
from dspex.offline import exact_match

from .conftest import QA, events_of, role


# MIPROv2 asks optuna for its experimental multivariate TPE sampler.
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_proposals_tips_and_optuna_trials_are_recorded(lm, arith, store):
    train, dev = arith
    optimizer = dspy.MIPROv2(
        metric=exact_match, auto=None, num_candidates=3, num_threads=2, verbose=False
    )
    with dspex.experiment("mipro", program=QA(), program_name="qa", store=store) as exp:
        optimized = optimizer.compile(
            QA(),
            trainset=train[:16],
            valset=dev[:8],
            num_trials=4,
            minibatch_size=4,
            minibatch_full_eval_steps=2,
            max_bootstrapped_demos=2,
            max_labeled_demos=2,
        )
    archived = store.get_experiment(exp.id)
    assert mipro_module.eval_candidate_program is teleprompt_utils.eval_candidate_program
    assert mipro_module.GroundedProposer is GroundedProposer
    compile_trial = next(t for t in role(archived, "compile") if t.name == "MIPROv2 compile")
    decisions = [e.payload for e in events_of(compile_trial, "decision")]
    demo_sets = [d for d in decisions if d["step"] == 1]
    assert len(demo_sets) == 1 and demo_sets[0]["details"]["demo_sets"]["0"]
    nested = [t for t in archived.trials if t.parent_trial_ids == (compile_trial.id,)]
    assert any(t.name == "BootstrapFewShot compile" for t in nested)
    proposals = [d for d in decisions if d["step"] == 2 and "tip_key" in d["details"]]
    assert len(proposals) == 3
    for proposal in proposals:
        key = proposal["details"]["tip_key"]
        assert key in TIPS and proposal["details"]["tip"] == TIPS[key]
        assert proposal["action"] == proposal["details"]["instruction"] != ""
    candidates = [t for t in role(archived, "candidate") if "optuna_trial" in t.metadata]
    assert len(candidates) == 4
    default = next(t for t in archived.trials if t.name == "default program")
    assert len(default.example_results) == 8
    # examples run through dspy.Evaluate still carry latency and tokens, from the events
    assert all(r.latency_ms is not None and r.tokens > 0 for r in default.example_results)
    valset = examples_fingerprint(example_key(*example_split(ex)) for ex in dev[:8])
    assert default.score_scope.fingerprint == valset and default.score_scope.n == 8
    for trial in candidates:
        decision = events_of(trial, "decision")[0].payload
        assert set(decision["details"]["params"]) == {
            "0_predictor_instruction",
            "0_predictor_demos",
        }
        scored = events_of(trial, "candidate_scored")[0].payload
        assert scored["scope"] == "minibatch" and scored["n"] == 4
        assert trial.score == scored["score"] and trial.parent_trial_ids == (default.id,)
        assert trial.score_scope.name == "minibatch" and trial.score_scope.n == 4
        assert scored["fingerprint"] == trial.score_scope.fingerprint != valset
        assert len(trial.example_results) == 4
    full = role(archived, "validation")
    assert full and all(
        events_of(t, "candidate_scored")[0].payload["scope"] == "full" for t in full
    )
    assert {t.score_scope.fingerprint for t in full} == {valset}
    lm_events = sum(len(events_of(t, "lm_call")) for t in archived.trials)
    assert lm_events == lm.engine.calls
    end = events_of(compile_trial, "optimizer_end")[0].payload
    candidate_ids = {t.id for t in candidates} | {default.id}
    assert optimized.dspex_trial_id in candidate_ids
    assert end["best_candidate"] == optimized.dspex_trial_id
    assert end["best_score"] == max(t.score for t in full + [default])


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_instruction_set_is_the_one_mipro_uses_and_trials_name_their_instruction(lm, arith, store):
    train, dev = arith
    optimizer = dspy.MIPROv2(
        metric=exact_match, auto=None, num_candidates=3, num_threads=2, verbose=False
    )
    student = QA()
    with dspex.experiment("mipro", program=student, program_name="qa", store=store) as exp:
        optimizer.compile(
            student,
            trainset=train[:16],
            valset=dev[:8],
            num_trials=4,
            minibatch_size=4,
            minibatch_full_eval_steps=2,
            max_bootstrapped_demos=1,
            max_labeled_demos=1,
        )
    archived = store.get_experiment(exp.id)
    compile_trial = next(t for t in archived.trials if t.name == "MIPROv2 compile")
    decisions = [e.payload for e in events_of(compile_trial, "decision")]
    proposals = [d for d in decisions if d["step"] == 2 and "index" in d["details"]]
    (candidates,) = [d for d in decisions if d["decision"].startswith("Instruction candidates")]
    instructions = candidates["details"]["instructions"]
    original = student.predict.signature.instructions
    # DSPy puts the original instruction in slot 0, in place of the first proposal
    assert instructions[0] == original and candidates["details"]["sources"][0] == "original"
    assert [p["details"]["index"] for p in proposals] == [0, 1, 2]
    assert proposals[0]["details"]["used"] is False and "original" in proposals[0]["rationale"]
    assert [p["action"] for p in proposals[1:]] == instructions[1:]
    assert all(p["details"]["used"] for p in proposals[1:])
    for trial in [t for t in archived.trials if "optuna_trial" in t.metadata]:
        decision = events_of(trial, "decision")[0].payload
        index = decision["details"]["params"]["0_predictor_instruction"]
        assert decision["details"]["instructions"] == {"0": instructions[index]}
        assert trial.variables.predictors["qa.predict"].instructions == instructions[index]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_full_evaluations_name_the_optuna_trial_they_evaluate(lm, arith, store):
    train, dev = arith
    optimizer = dspy.MIPROv2(
        metric=exact_match, auto=None, num_candidates=2, num_threads=2, verbose=False
    )
    with dspex.experiment("mipro", program=QA(), program_name="qa", store=store) as exp:
        optimizer.compile(
            QA(),
            trainset=train[:12],
            valset=dev[:6],
            num_trials=4,
            minibatch_size=3,
            minibatch_full_eval_steps=2,
            max_bootstrapped_demos=1,
            max_labeled_demos=1,
        )
    archived = store.get_experiment(exp.id)
    by_id = {t.id: t for t in archived.trials}
    full = role(archived, "validation")
    assert full
    for trial in full:
        (parent,) = trial.parent_trial_ids
        assert by_id[parent].name.startswith("optuna trial ")
        assert trial.name == f"full evaluation of {by_id[parent].name}"
