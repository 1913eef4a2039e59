"""SIMBA compiles recorded with the offline LM, checked on the archived experiment."""

from __future__ import annotations

import threading

import dspy
import dspy.teleprompt.simba as simba_module
import pytest
from dspy.teleprompt import simba_utils

import dspex
from dspex import ExperimentStatus
from dspex.capture.scoring import example_fields as example_split
from dspex.model import example_key, examples_fingerprint
from dspex.offline import exact_match
from dspex.optimizers import simba as simba_hook

from .conftest import QA, events_of, role, simba


def _compile(store, train, program=None, **settings):
    program = program or QA()
    with dspex.experiment("simba", program=program, program_name="qa", store=store) as exp:
        optimized = simba(**settings).compile(program, trainset=train, seed=0)
    return exp, optimized, store.get_experiment(exp.id)


def _assert_originals_restored():
    assert simba_module.wrap_program is simba_utils.wrap_program
    assert simba_module.prepare_models_for_resampling is simba_utils.prepare_models_for_resampling


@pytest.fixture(scope="module")
def recorded(arith):
    """One recorded SIMBA compile (num_threads=4), shared by the read-only tests below."""
    train, _ = arith
    lm = dspex.offline_lm()
    store = dspex.ResultStore.open("memory://")
    with dspy.context(lm=lm):
        exp, optimized, archived = _compile(store, train[:16])
    return lm, optimized, archived, train[:16]


def test_every_lm_call_is_recorded_once(recorded):
    lm, _, archived, _ = recorded
    assert archived.status is ExperimentStatus.COMPLETED
    lm_events = sum(len(events_of(t, "lm_call")) for t in archived.trials)
    assert lm_events == lm.engine.calls > 0


def test_append_a_rule_records_offer_feedback_advice_and_changes(recorded):
    _, _, archived, _ = recorded
    rules = [
        (t, e)
        for t in role(archived, "candidate")
        for e in events_of(t, "decision")
        if e.payload["strategy"] == "append_a_rule"
        and e.payload["action"].startswith("OfferFeedback advice: ")
    ]
    assert rules, "no append_a_rule decision with OfferFeedback advice"
    trial, decision = rules[0]
    advice = decision.payload["details"]["advice"]
    assert advice and all(text in decision.payload["action"] for text in advice.values())
    assert decision.payload["rationale"]  # the OfferFeedback discussion
    kinds = [e.kind.value for e in trial.events]
    feedback = [
        e
        for e in events_of(trial, "lm_call")
        if "module_advice" in e.payload["messages"][0]["content"]
    ]
    assert len(feedback) == 1
    assert feedback[0].payload["module"] == "Predict(OfferFeedback)"  # SIMBA's own predictor
    # orchestration first: step, decision, the OfferFeedback call, outcome, candidate_created
    assert kinds[0] == "step" and kinds[1] == "decision"
    assert feedback[0].sequence < decision.sequence < kinds.index("candidate_created")
    step_id = trial.events[0].id
    assert decision.parent_id == step_id
    created = events_of(trial, "candidate_created")[0].payload
    assert created["candidate"] == trial.id and created["strategy"] == "append_a_rule"
    assert created["parents"] == list(trial.parent_trial_ids)
    change = next(c for c in created["changes"] if c["field"] == "instructions")
    assert change["predictor"] == "qa.predict"
    assert change["after"].startswith(change["before"]) and change["after"] != change["before"]
    assert list(advice.values())[0] in change["after"]
    assert trial.variables.predictors["qa.predict"].instructions == change["after"]


def test_append_a_demo_and_source_choice_are_decisions(recorded):
    _, _, archived, _ = recorded
    by_id = {t.id: t for t in archived.trials}
    demos = [
        t
        for t in role(archived, "candidate")
        if any(
            c["field"] == "demos" and len(c["after"]) > len(c["before"])
            for e in events_of(t, "candidate_created")
            for c in e.payload["changes"]
        )
    ]
    assert demos
    first = events_of(demos[0], "decision")[0].payload
    assert first["strategy"] == "append_a_demo"
    details = first["details"]
    assert {"max_to_min_gap", "max_to_avg_gap", "bucket", "example", "source_candidate"} <= set(
        details
    )
    assert f"max-to-min gap {details['max_to_min_gap']:g}" in first["rationale"]
    source = by_id[details["source_candidate"]]
    assert source.metadata["candidate"] == details["source_index"]
    assert demos[0].parent_trial_ids == (source.id,)
    assert first["decision"] == f"Propose a new candidate from {source.name.split(' (')[0]}"


def test_candidates_are_scored_on_their_minibatch_in_their_own_trial(recorded):
    _, _, archived, train = recorded
    questions = {ex.question: i for i, ex in enumerate(train)}
    steps = {}
    for trial in role(archived, "candidate")[1:]:
        step = trial.metadata["step"]
        batch = events_of(trial, "step")[0].payload["batch"]
        steps.setdefault(step, set()).add(tuple(batch))
        created = events_of(trial, "candidate_created")[0]
        runs = [
            e
            for e in trial.events
            if e.kind.value == "module_start"
            and e.parent_id is None
            and e.sequence > created.sequence
        ]
        assert sorted(questions[e.payload["inputs"]["question"]] for e in runs) == sorted(batch)
        assert sorted(r.index for r in trial.example_results) == sorted(batch)
        # ...and it is this candidate's program that ran: its demos and instructions
        variables = trial.variables.predictors["qa.predict"]
        calls = [e for e in events_of(trial, "lm_call") if e.sequence > created.sequence]
        assert len(calls) == 8
        for call in calls:
            messages = call.payload["messages"]
            assert len(messages) == 2 + 2 * len(variables.demos)
            assert variables.instructions.splitlines()[-1].strip() in messages[0]["content"]
        scored = events_of(trial, "candidate_scored")[0].payload
        minibatch = examples_fingerprint(example_key(*example_split(train[i])) for i in batch)
        assert scored == {
            "candidate": trial.id,
            "score": trial.score,
            "scope": "minibatch",
            "n": 8,
            "fingerprint": minibatch,
        }
        assert trial.score_scope.fingerprint == minibatch and trial.score_scope.n == 8
        assert trial.score_scope.name == "minibatch" and trial.score_scope.metric == "exact_match"
        assert trial.score == pytest.approx(
            sum(r.metrics["exact_match"] for r in trial.example_results) / 8
        )
    assert sorted(steps) == [1, 2, 3] and all(len(b) == 1 for b in steps.values())


def test_no_event_points_to_a_parent_outside_its_trial(recorded):
    _, _, archived, _ = recorded
    for trial in archived.trials:
        ids = {e.id for e in trial.events}
        assert all(e.parent_id is None or e.parent_id in ids for e in trial.events), trial.name
        assert [e.sequence for e in trial.events] == list(range(len(trial.events)))
    workers = {e.worker for t in archived.trials for e in events_of(t, "lm_call")}
    assert len(workers) > 1  # the runs really were spread over dspy.Parallel threads


def test_sampling_runs_name_their_candidate_and_temperature(recorded):
    _, _, archived, _ = recorded
    sampling = role(archived, "sampling")
    assert [t.metadata["step"] for t in sampling] == [1, 2, 3]
    candidate_ids = {t.id for t in role(archived, "candidate")}
    for trial in sampling:
        runs = events_of(trial, "example_result")
        assert len(runs) == len(trial.example_results) == 8 * 3
        assert {r.payload["temperature"] for r in runs} == {1.0}
        assert {r.payload["candidate"] for r in runs} == set(trial.parent_trial_ids)
        assert set(trial.parent_trial_ids) <= candidate_ids
        assert trial.score is None
        summary = events_of(trial, "decision")[0].payload
        assert sum(summary["details"]["runs_per_candidate"].values()) == 8 * 3
        assert summary["details"]["batch_score"] == pytest.approx(
            sum(r.metrics["exact_match"] for r in trial.example_results) / 24
        )


def test_step_winners_validation_and_returned_program(recorded):
    _, optimized, archived, train = recorded
    compile_trial = role(archived, "compile")[0]
    decisions = [e.payload for e in events_of(compile_trial, "decision")]
    winners = [d for d in decisions if d["decision"].startswith("Step ")]
    assert [d["step"] for d in winners] == [1, 2, 3]
    by_id = {t.id: t for t in archived.trials}
    for winner in winners:
        chosen = by_id[winner["details"]["winner"]]
        step_scores = [
            t.score for t in role(archived, "candidate") if t.metadata.get("step") == winner["step"]
        ]
        assert chosen.score == max(step_scores)
    validations = role(archived, "validation")
    assert validations and all(len(t.example_results) == len(train) for t in validations)
    trainset = examples_fingerprint(example_key(*example_split(ex)) for ex in train)
    assert {(t.score_scope.name, t.score_scope.fingerprint) for t in validations} == {
        ("full", trainset)
    }
    assert all(t.score_scope is None for t in role(archived, "sampling"))
    end = events_of(compile_trial, "optimizer_end")[0].payload
    best_validation = max(validations, key=lambda t: t.score)
    assert end["best_score"] == best_validation.score
    assert end["best_candidate"] == best_validation.parent_trial_ids[0]
    assert optimized.dspex_trial_id == end["best_candidate"]
    assert not hasattr(optimized, simba_hook.TAG)


def test_evaluating_the_result_links_it_to_its_candidate(lm, arith, store):
    train, dev = arith
    program = QA()
    with dspex.experiment("simba+eval", program=program, store=store) as exp:
        optimized = simba(max_steps=1).compile(program, trainset=train[:16], seed=0)
        trial = exp.evaluate(optimized, dev[:4], exact_match)
    assert trial.parent_trial_ids == (optimized.dspex_trial_id,)
    _assert_originals_restored()


def test_failure_mid_compile_archives_finished_trials_and_restores(lm, arith, store):
    calls = {"n": 0}
    lock = threading.Lock()

    def breaks_at_step_2(example, prediction, trace=None):
        # step 1 scores 8 x 3 samples + at most 4 candidates x 8; then SIMBA gets a
        # score it cannot turn into a number and raises inside compile.
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n > 8 * 3 + 4 * 8:
            return dspy.Prediction(score=None)
        return exact_match(example, prediction)

    optimizer = simba(metric=breaks_at_step_2)
    originals = list(optimizer.strategies)
    with pytest.raises(TypeError):
        with dspex.experiment("simba-fails", program=QA(), store=store) as exp:
            optimizer.compile(QA(), trainset=arith[0][:16], seed=0)
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.FAILED
    assert "TypeError" in archived.metadata["error"]["type"]
    step1 = [t for t in role(archived, "candidate") if t.metadata.get("step") == 1]
    assert step1 and all(t.status.value == "ok" and t.score is not None for t in step1)
    compile_trial = role(archived, "compile")[0]
    assert compile_trial.status.value == "failed"
    assert events_of(compile_trial, "optimizer_end")[0].payload["ok"] is False
    assert [s.metadata["step"] for s in role(archived, "sampling")] == [1, 2]
    # step 2's sampling runs all finished before SIMBA choked on their scores
    assert len(role(archived, "sampling")[1].example_results) == 8 * 3
    assert not [t for t in role(archived, "candidate") if t.metadata.get("step") == 2]
    _assert_originals_restored()
    assert optimizer.strategies == originals


def test_ctrl_c_marks_the_experiment_interrupted(lm, arith, store):
    def append_a_rule(bucket, system, **kwargs):
        raise KeyboardInterrupt

    optimizer = simba()
    optimizer.strategies = [append_a_rule]
    with pytest.raises(KeyboardInterrupt):
        with dspex.experiment("simba-ctrl-c", program=QA(), store=store) as exp:
            optimizer.compile(QA(), trainset=arith[0][:16], seed=0)
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.INTERRUPTED
    assert role(archived, "sampling")[0].status.value == "ok"
    _assert_originals_restored()


def test_two_concurrent_compiles_record_into_their_own_experiments(arith):
    train = arith[0][:16]
    results = {}

    def run(name):
        lm = dspex.offline_lm(seed=len(name))
        store = dspex.ResultStore.open("memory://")
        with dspy.context(lm=lm):
            _, optimized, archived = _compile(store, train, max_steps=2)
        results[name] = (lm.engine.calls, archived, optimized)

    threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("one", "three")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {"one", "three"}
    ids = [{t.id for t in archived.trials} for _, archived, _ in results.values()]
    assert not ids[0] & ids[1]
    for calls, archived, optimized in results.values():
        assert archived.status is ExperimentStatus.COMPLETED
        assert sum(len(events_of(t, "lm_call")) for t in archived.trials) == calls
        assert optimized.dspex_trial_id in {t.id for t in archived.trials}
        assert len(role(archived, "sampling")) == 2
    _assert_originals_restored()
