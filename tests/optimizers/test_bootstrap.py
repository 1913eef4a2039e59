"""BootstrapFewShot compiles recorded with the offline LM."""

from __future__ import annotations

import dspy

import dspex
from dspex.offline import exact_match

from .conftest import QA, events_of, role


def test_each_attempt_and_the_accepted_demos_are_recorded(lm, arith, store):
    train = arith[0][:12]
    optimizer = dspy.BootstrapFewShot(
        metric=exact_match, max_bootstrapped_demos=3, max_labeled_demos=5
    )
    with dspex.experiment("bfs", program=QA(), program_name="qa", store=store) as exp:
        compiled = optimizer.compile(QA(), trainset=train)
    archived = store.get_experiment(exp.id)
    trial = next(t for t in role(archived, "compile") if t.name == "BootstrapFewShot compile")
    assert compiled.dspex_trial_id == trial.id
    # the teacher's LabeledFewShot compile: generic hook, nested under BootstrapFewShot
    nested = next(t for t in role(archived, "compile") if t.name == "LabeledFewShot compile")
    assert nested.parent_trial_ids == (trial.id,)
    steps = events_of(trial, "step")
    decisions = [e for e in events_of(trial, "decision")]
    assert len(steps) == len(decisions) > 0
    assert all(d.parent_id == s.id for s, d in zip(steps, decisions, strict=True))
    accepted = [d.payload for d in decisions if d.payload["details"]["accepted"]]
    rejected = [d.payload for d in decisions if not d.payload["details"]["accepted"]]
    assert len(accepted) == 3
    assert accepted[0]["action"] == "Keep its trace as demo(s) for qa.predict"
    assert all(r["action"] == "Discard the trace" for r in rejected)
    demos = compiled.predict.demos
    bootstrapped = [d for d in demos if d.get("augmented")]
    assert [d.question for d in bootstrapped] == [
        train[a["details"]["example"]].question for a in accepted
    ]
    created = events_of(trial, "candidate_created")[0].payload
    change = created["changes"][0]
    assert change["field"] == "demos" and change["before"] == [] and len(change["after"]) == 5
    assert len(trial.variables.predictors["qa.predict"].demos) == 5
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    assert len(calls) == lm.engine.calls == len(steps)
    assert {e.payload["module"] for e in calls} == {"qa.predict"}  # the teacher, by path
