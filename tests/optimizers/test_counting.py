"""Every optimizer, run on an LM written here (not the offline LM): each request the
engine answers is one completion of a recorded ``lm_call`` (a call asking for n > 1
candidates is one ``lm_call`` with n completions), never more, never fewer."""

from __future__ import annotations

import contextlib
import io

import dspy
import numpy as np
import pytest

import dspex

from .conftest import events_of
from .scripted import Router, scripted_lm, scripted_metric, topics


def _embed(texts):
    return np.array([[t.count("alpha"), t.count("beta"), t.count("gamma"), 1.0] for t in texts])


def _simba(lm, exp):
    optimizer = dspy.SIMBA(metric=scripted_metric, bsize=4, num_candidates=2, max_steps=2)
    return optimizer.compile(Router(), trainset=topics(), seed=0)


def _mipro(lm, exp):
    optimizer = dspy.MIPROv2(
        metric=scripted_metric, auto=None, num_candidates=2, num_threads=1, verbose=False
    )
    return optimizer.compile(
        Router(),
        trainset=topics(),
        valset=topics(2),
        num_trials=3,
        minibatch_size=3,
        max_bootstrapped_demos=1,
        max_labeled_demos=1,
    )


def _bootstrap(lm, exp):
    return dspy.BootstrapFewShot(metric=scripted_metric).compile(Router(), trainset=topics())


def _labeled(lm, exp):
    program = dspy.LabeledFewShot(k=2).compile(Router(), trainset=topics())
    return exp.evaluate(program, topics(1), scripted_metric)


def _gepa(lm, exp):
    optimizer = dspy.GEPA(metric=scripted_metric, max_metric_calls=40, reflection_lm=lm)
    return optimizer.compile(Router(), trainset=topics(), valset=topics(2))


def _copro(lm, exp):
    optimizer = dspy.COPRO(metric=scripted_metric, breadth=3, depth=2)
    return optimizer.compile(Router(), trainset=topics(), eval_kwargs={"display_progress": False})


def _random_search(lm, exp):
    optimizer = dspy.BootstrapFewShotWithRandomSearch(
        metric=scripted_metric, max_bootstrapped_demos=1, num_candidate_programs=1
    )
    return optimizer.compile(Router(), trainset=topics(), valset=topics(2))


def _knn(lm, exp):
    optimizer = dspy.KNNFewShot(k=2, trainset=topics(), vectorizer=dspy.Embedder(_embed))
    program = optimizer.compile(Router())
    return exp.evaluate(program, topics(1), scripted_metric)  # retrieval runs per example


RUNS = {
    "SIMBA": _simba,
    "MIPROv2": _mipro,
    "BootstrapFewShot": _bootstrap,
    "LabeledFewShot": _labeled,
    "GEPA": _gepa,
    "COPRO": _copro,
    "BootstrapFewShotWithRandomSearch": _random_search,
    "KNNFewShot": _knn,
}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("name", list(RUNS))
def test_recorded_completions_equal_the_engines_requests(name, store):
    lm = scripted_lm()
    quiet = contextlib.ExitStack()
    quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
    quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
    with quiet, dspy.context(lm=lm):
        with dspex.experiment(name, program=Router(), program_name="router", store=store) as exp:
            RUNS[name](lm, exp)
    archived = store.get_experiment(exp.id)
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    assert sum(len(e.payload["response"]) for e in calls) == lm.engine.calls > 0
    assert archived.optimizer is not None and archived.optimizer.name == name
