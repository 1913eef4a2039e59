"""Meaning, not only names: what dspex records of an optimizer agrees with what DSPy reports.

Each optimizer runs twice, without dspex and inside an experiment, on the offline LM and
on an LM written here; the returned programs are the same, and the record agrees with
DSPy's own account of the run: the program it returns, its ``candidate_programs`` and
scores, ``trial_logs``, GEPA's result object, and the LM's own call counter. A hook that
reads a DSPy internal which kept its name and changed its meaning fails one of these.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import dspy
import pytest

import dspex
from dspex.offline import ArithQA, exact_match, exact_match_with_feedback, load_arith
from dspex.offline.lm import answering_lm
from dspex.optimizers.gepa import MIN_GEPA, gepa_version

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]


class CarelessAdder:
    """An LM written here: adds the two numbers of a question, but gets every question
    whose first number is a multiple of 3 wrong unless its prompt shows a demo or an
    instruction saying "carefully"; asked for an instruction, it adds "carefully"."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> CarelessAdder:
        # DSPy 3.2's LM.copy deep-copies the LM (SIMBA's sampling LMs): shared like a
        # client connection, so that the counter sees every call of every copy
        return self

    def answer(self, model, system, messages, temperature, candidate=0):
        with self._lock:
            self.calls += 1
        user = messages[-1][1] if messages else ""
        section = system.split("Your output fields are:")[-1]
        outputs = re.findall(r"^\d+\. `(\w+)` \((.*?)\)", section, re.M)
        values = {name: self._value(name, kind, system, messages, user) for name, kind in outputs}
        if "JSON" in system or "JSON" in user:
            text = json.dumps(values)
        else:
            text = "\n\n".join(f"[[ ## {k} ## ]]\n{v}" for k, v in values.items())
            text += "\n\n[[ ## completed ## ]]"
        return text, len(user.split()), 4

    @staticmethod
    def _value(name, kind, system, messages, user):
        if kind.startswith(("dict", "list")):
            return {} if kind.startswith("dict") else []
        if "instruction" in name:
            return "Add the two numbers carefully."
        if name == "answer":
            found = re.findall(r"(\d+) \+ (\d+)", user)
            if not found:
                return "0"
            a, b = (int(x) for x in found[-1])
            careful = "carefully" in system or len(messages) > 1
            return str(a + b if careful or a % 3 else a + b + 1)
        return "ok"


def _lm(kind: str) -> Any:
    if kind == "offline":
        return dspex.offline_lm()
    return answering_lm("test/careless", CarelessAdder())


def _calls(lm: Any) -> int:
    return int(lm.engine.calls)


@pytest.fixture(scope="module")
def data():
    return load_arith()


# -- runs --------------------------------------------------------------------------------


def _quiet(run: Callable[[], Any]) -> Any:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return run()


def _twice(kind: str, compile_: Callable[[], Any]) -> tuple[Any, Any, dspex.Experiment, Any]:
    """(plain result, recorded result, the sealed experiment, the recorded run's LM)."""
    with dspy.context(lm=_lm(kind)):
        plain = _quiet(compile_)
    lm = _lm(kind)
    store = dspex.ResultStore.open("memory://")
    with dspy.context(lm=lm):
        with dspex.experiment("contract", program=ArithQA(), program_name="qa", store=store) as exp:
            recorded = _quiet(compile_)
    return plain, recorded, store.get_experiment(exp.id), lm


def _state(program: Any) -> str:
    state = {k: v for k, v in program.dump_state().items() if k != "dspex_trial_id"}
    return json.dumps(state, sort_keys=True, default=str)


def _role(experiment, name):
    return [t for t in experiment.trials if t.metadata.get("role") == name]


def _events(trial, kind):
    return [e.payload for e in trial.events if e.kind.value == kind]


def _common(plain, recorded, experiment, lm) -> dict[str, Any]:
    """What holds for every optimizer: same program, sealed cleanly, every LM call recorded
    (a call asking for n completions is one call of n engine requests), no degradation."""
    assert _state(recorded) == _state(plain)
    assert experiment.status.value == "completed"
    assert not [w for w in experiment.warnings if "degraded" in w], experiment.warnings
    calls = [e for t in experiment.trials for e in _events(t, "lm_call")]
    assert sum(len(c["response"] or [None]) for c in calls) == _calls(lm) > 0
    return {t.id: t for t in experiment.trials}


LMS = ["offline", "written here"]


# -- SIMBA ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LMS)
def test_simba_records_the_candidates_and_scores_it_returns(kind, data):
    train, _ = data
    steps = 2

    def run():
        optimizer = dspy.SIMBA(
            metric=exact_match, bsize=4, num_candidates=2, max_steps=steps, max_demos=2
        )
        return optimizer.compile(ArithQA(), trainset=train[:8], seed=1)

    plain, program, experiment, lm = _twice(kind, run)
    trials = _common(plain, program, experiment, lm)
    compile_trial = _role(experiment, "compile")[0]
    assert [s["step"] for s in _events(compile_trial, "step")] == list(range(1, steps + 1))
    validations = _role(experiment, "validation")
    ours = sorted(t.score for t in validations)
    theirs = sorted(c["score"] for c in program.candidate_programs)
    assert ours == pytest.approx(theirs)
    returned = trials[program.dspex_trial_id]
    best = max(validations, key=lambda t: t.score)
    assert returned.id == best.parent_trial_ids[0]  # the candidate whose validation won
    assert best.score == pytest.approx(program.candidate_programs[0]["score"])
    for log in program.trial_logs.values():  # DSPy's own per-step record of the batch
        if "batch_idx" in log:
            assert log["batch_idx"] + 1 in {s["step"] for s in _events(compile_trial, "step")}


# -- MIPROv2 -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LMS)
def test_mipro_records_each_optuna_trial_with_the_score_dspy_logs(kind, data):
    train, dev = data
    trials_n = 4

    def run():
        optimizer = dspy.MIPROv2(
            metric=exact_match, auto=None, num_candidates=2, num_threads=1, verbose=False, seed=3
        )
        return optimizer.compile(
            ArithQA(),
            trainset=train[:8],
            valset=dev[:4],
            num_trials=trials_n,
            minibatch=False,
            max_bootstrapped_demos=1,
            max_labeled_demos=1,
        )

    plain, program, experiment, lm = _twice(kind, run)
    trials = _common(plain, program, experiment, lm)
    candidates = [t for t in _role(experiment, "candidate") if "optuna_trial" in t.metadata]
    assert len(candidates) == trials_n
    logged = {
        n: log["full_eval_score"]
        for n, log in program.trial_logs.items()
        if "full_eval_score" in log and n > 1
    }
    recorded = {}
    for trial in candidates:
        (scored,) = _events(trial, "candidate_scored")
        recorded[trial.metadata["optuna_trial"]] = scored["optuna_value"]
    # DSPy numbers its trial logs from 1 (the default program) and optuna from 0
    assert sorted(recorded.values()) == pytest.approx(sorted(logged.values()))
    returned = trials[program.dspex_trial_id]
    scored = _events(returned, "candidate_scored")[-1]
    assert scored["optuna_value"] == pytest.approx(program.score)


# -- COPRO ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LMS)
def test_copro_records_every_candidate_score_it_keeps(kind, data):
    train, _ = data

    def run():
        optimizer = dspy.COPRO(metric=exact_match, breadth=2, depth=2)
        return optimizer.compile(
            ArithQA(), trainset=train[:6], eval_kwargs={"display_progress": False}
        )

    plain, program, experiment, lm = _twice(kind, run)
    trials = _common(plain, program, experiment, lm)
    ours = [
        s["copro_score"]
        for t in _role(experiment, "candidate")
        for s in _events(t, "candidate_scored")
    ]
    theirs = [c["score"] for c in program.candidate_programs]
    assert set(theirs) <= set(ours) and len(ours) >= len(theirs)
    returned = trials[program.dspex_trial_id]
    assert (
        _events(returned, "candidate_scored")[0]["copro_score"]
        == program.candidate_programs[0]["score"]
    )


# -- BootstrapFewShotWithRandomSearch --------------------------------------------------------


@pytest.mark.parametrize("kind", LMS)
def test_random_search_records_each_seed_with_dspys_score(kind, data):
    train, dev = data

    def run():
        optimizer = dspy.BootstrapFewShotWithRandomSearch(
            metric=exact_match, max_bootstrapped_demos=2, num_candidate_programs=2
        )
        return optimizer.compile(ArithQA(), trainset=train[:6], valset=dev[:4])

    plain, program, experiment, lm = _twice(kind, run)
    trials = _common(plain, program, experiment, lm)
    by_seed = {
        t.metadata["seed"]: _events(t, "candidate_scored")[0]["search_score"]
        for t in _role(experiment, "candidate")
    }
    assert by_seed == {c["seed"]: pytest.approx(c["score"]) for c in program.candidate_programs}
    best = max(program.candidate_programs, key=lambda c: c["score"])
    assert trials[program.dspex_trial_id].metadata["seed"] in {
        c["seed"] for c in program.candidate_programs if c["score"] == best["score"]
    }


# -- BootstrapFewShot, LabeledFewShot, KNNFewShot ---------------------------------------------


@pytest.mark.parametrize("kind", LMS)
def test_bootstrap_records_the_demos_it_returns(kind, data):
    train, _ = data

    def run():
        optimizer = dspy.BootstrapFewShot(metric=exact_match, max_bootstrapped_demos=2)
        return optimizer.compile(ArithQA(), trainset=train[:6])

    plain, program, experiment, lm = _twice(kind, run)
    trials = _common(plain, program, experiment, lm)
    compile_trial = trials[program.dspex_trial_id]
    accepted = [d for d in _events(compile_trial, "decision") if d["details"].get("accepted")]
    augmented = [d for d in program.predict.demos if d.get("augmented")]
    assert len(accepted) == len(augmented)
    asked = [d["details"]["example"] for d in accepted]
    assert [train[i].question for i in asked] == [d["question"] for d in augmented]


@pytest.mark.parametrize("kind", LMS)
def test_labeled_records_the_training_examples_it_gives(kind, data):
    train, _ = data

    def run():
        return dspy.LabeledFewShot(k=3).compile(ArithQA(), trainset=train[:10])

    plain, program, experiment, lm = _twice(kind, run) if kind == "offline" else (None,) * 4
    if kind != "offline":
        pytest.skip("LabeledFewShot makes no LM call: one LM is enough")
    compile_trial = _role(experiment, "compile")[0]
    assert _state(program) == _state(plain)
    (decision,) = _events(compile_trial, "decision")
    (indices,) = decision["details"]["trainset_indices"].values()
    assert [train[i].question for i in indices] == [d["question"] for d in program.predict.demos]


def _embed(texts):
    return [[float(len(t)), float(sum(map(ord, t)) % 97)] for t in texts]


@pytest.mark.parametrize("kind", LMS)
def test_knn_records_one_retrieval_per_answer(kind, data):
    train, dev = data
    examples = dev[:3]

    def compiled():
        optimizer = dspy.KNNFewShot(
            k=2, trainset=train[:8], vectorizer=dspy.Embedder(_embed), max_bootstrapped_demos=1
        )
        return optimizer.compile(ArithQA())

    with dspy.context(lm=_lm(kind)):
        program = _quiet(compiled)
        plain = [_quiet(lambda e=e: program(question=e.question).answer) for e in examples]
    lm = _lm(kind)
    store = dspex.ResultStore.open("memory://")
    with dspy.context(lm=lm):
        with dspex.experiment("knn", program=ArithQA(), program_name="qa", store=store) as exp:
            program = _quiet(compiled)
            trial = _quiet(lambda: exp.evaluate(program, examples, exact_match))
    experiment = store.get_experiment(exp.id)
    results = sorted(experiment.trial(trial.id).example_results, key=lambda r: r.index)
    assert [r.prediction["answer"] for r in results] == plain
    retrievals = [
        d
        for d in _events(experiment.trial(trial.id), "decision")
        if d["decision"].startswith("KNN retrieval")
    ]
    assert len(retrievals) == len(examples)
    calls = [e for t in experiment.trials for e in _events(t, "lm_call")]
    assert len(calls) == _calls(lm)


# -- GEPA ------------------------------------------------------------------------------------


@pytest.mark.skipif(
    (gepa_version() or MIN_GEPA) < MIN_GEPA,
    reason="gepa < 0.1 (DSPy 3.2 pins gepa 0.0.27): GEPA is recorded in degraded mode, "
    "checked by tests/optimizers/test_gepa.py::test_the_record_is_full_or_says_it_is_degraded",
)
@pytest.mark.parametrize("kind", LMS)
def test_gepa_records_the_candidates_parents_and_scores_of_its_result(kind, data):
    train, dev = data

    def run():
        optimizer = dspy.GEPA(
            metric=exact_match_with_feedback,
            max_metric_calls=40,
            reflection_lm=dspy.settings.lm,
            num_threads=1,
            track_stats=True,
            seed=0,
        )
        return optimizer.compile(ArithQA(), trainset=train[:6], valset=dev[:4])

    plain, program, experiment, lm = _twice(kind, run)
    trials = _common(plain, program, experiment, lm)
    details = program.detailed_results
    assert plain.detailed_results.parents == details.parents
    candidates = {
        t.metadata["candidate"]: t
        for t in _role(experiment, "candidate")
        if "candidate" in t.metadata
    }
    assert sorted(candidates) == list(range(len(details.candidates)))
    for index, parents in enumerate(details.parents):
        expected = [candidates[p].id for p in parents if p is not None]
        assert list(candidates[index].parent_trial_ids) == expected
    validations = {t.parent_trial_ids[0]: t for t in _role(experiment, "validation")}
    for index, score in enumerate(details.val_aggregate_scores):
        assert validations[candidates[index].id].score == pytest.approx(score)
    assert trials[program.dspex_trial_id] is candidates[details.best_idx]
