"""LabeledFewShot and KNNFewShot recorded with the offline LM."""

from __future__ import annotations

import contextlib
import io
import random
import zlib

import dspy
import numpy as np
import pytest

import dspex
from dspex import ExperimentStatus
from dspex.offline import exact_match

from .conftest import QA, events_of, role


@pytest.mark.parametrize("sample", [True, False])
def test_labeled_fewshot_records_the_demos_it_chose(lm, arith, store, sample):
    train = arith[0][:12]
    with dspex.experiment("labeled", program=QA(), program_name="qa", store=store) as exp:
        compiled = dspy.LabeledFewShot(k=4).compile(QA(), trainset=train, sample=sample)
    archived = store.get_experiment(exp.id)
    (trial,) = archived.trials
    assert trial.metadata["role"] == "compile" and compiled.dspex_trial_id == trial.id
    chosen = random.Random(0).sample(range(12), 4) if sample else [0, 1, 2, 3]
    decision = events_of(trial, "decision")[0].payload
    assert decision["details"]["trainset_indices"] == {"qa.predict": chosen}
    assert f"training examples {chosen}" in decision["action"]
    change = events_of(trial, "candidate_created")[0].payload["changes"][0]
    assert change["field"] == "demos" and change["before"] == []
    assert [d["question"] for d in change["after"]] == [train[i].question for i in chosen]
    assert [d.question for d in compiled.predict.demos] == [train[i].question for i in chosen]
    assert len(trial.variables.predictors["qa.predict"].demos) == 4
    assert lm.engine.calls == 0
    plain = dspy.LabeledFewShot(k=4).compile(QA(), trainset=train, sample=sample)
    assert plain.dump_state() == compiled.dump_state()


def _embed(texts):
    """A bag-of-words embedding: enough for neighbours to share words."""
    vectors = np.zeros((len(texts), 64), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            vectors[row, zlib.crc32(word.encode()) % 64] += 1.0
    return vectors


def _knn(train):
    return dspy.KNNFewShot(
        k=3,
        trainset=train,
        vectorizer=dspy.Embedder(_embed),
        max_bootstrapped_demos=2,
        max_labeled_demos=2,
    )


def test_knn_fewshot_is_one_compile_and_one_retrieval_decision_per_example(lm, arith, store):
    train, dev = arith
    optimizer = _knn(train)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        with dspex.experiment("knn", program=QA(), program_name="qa", store=store) as exp:
            program = optimizer.compile(QA())
            evaluation = exp.evaluate(program, dev[:6], exact_match, name="knn")
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.COMPLETED
    (compile_trial,) = role(archived, "compile")
    assert compile_trial.name == "KNNFewShot compile" and program.dspex_trial_id == compile_trial.id
    assert events_of(compile_trial, "decision")[0].payload["details"]["k"] == 3
    trial = next(t for t in archived.trials if t.id == evaluation.id)
    assert trial.parent_trial_ids == (compile_trial.id,)
    decisions = [e.payload for e in events_of(trial, "decision")]
    expected = [[train.index(e) for e in optimizer.KNN(question=x.question)] for x in dev[:6]]
    recorded = [d["details"]["neighbours"] for d in decisions]
    assert sorted(recorded) == sorted(expected)
    for decision in decisions:
        neighbours = {train[i].question for i in decision["details"]["neighbours"]}
        demos = decision["details"]["demos"]["qa.predict"]
        assert demos and {d["question"] for d in demos} <= neighbours
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    assert len(calls) == lm.engine.calls and {e.payload["module"] for e in calls} == {"qa.predict"}


def test_knn_fewshot_answers_as_it_does_without_dspex(arith, store):
    train, dev = arith
    answers = []
    for recorded in (False, True):
        lm = dspex.offline_lm()
        with dspy.context(lm=lm), contextlib.redirect_stderr(io.StringIO()):
            context = (
                dspex.experiment("knn", program=QA(), store=store)
                if recorded
                else contextlib.nullcontext()
            )
            with contextlib.redirect_stdout(io.StringIO()), context:
                program = _knn(train).compile(QA())
                answers.append([program(question=e.question).answer for e in dev[:4]])
    assert answers[0] == answers[1]
