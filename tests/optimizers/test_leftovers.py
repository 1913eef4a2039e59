"""Nothing of dspex stays on what an optimizer hands back, in memory or saved.

The returned program carries ``dspex_trial_id`` (the documented link to its candidate
trial); nothing else, and no other object reachable from it or from the optimizer,
carries anything of dspex. Saving the program (cloudpickle) and loading it back shows
the same.
"""

from __future__ import annotations

import contextlib
import io

import dspy
import pytest

import dspex
from dspex.offline import exact_match, exact_match_with_feedback

from .conftest import QA, dspex_marks, simba


def _simba(train, dev):
    optimizer = simba(max_steps=2)
    return optimizer, optimizer.compile(QA(), trainset=train[:16], seed=0)


def _mipro(train, dev):
    optimizer = dspy.MIPROv2(
        metric=exact_match, auto=None, num_candidates=2, num_threads=2, verbose=False
    )
    program = optimizer.compile(
        QA(),
        trainset=train[:12],
        valset=dev[:6],
        num_trials=4,
        minibatch_size=3,
        minibatch_full_eval_steps=2,
        max_bootstrapped_demos=1,
        max_labeled_demos=1,
    )
    return optimizer, program


def _gepa(train, dev):
    optimizer = dspy.GEPA(
        metric=exact_match_with_feedback,
        max_metric_calls=60,
        reflection_lm=dspy.settings.lm,
        track_stats=True,
    )
    with contextlib.redirect_stderr(io.StringIO()):
        return optimizer, optimizer.compile(QA(), trainset=train[:12], valset=dev[:6])


def _copro(train, dev):
    optimizer = dspy.COPRO(metric=exact_match, breadth=2, depth=2)
    return optimizer, optimizer.compile(
        QA(), trainset=train[:8], eval_kwargs={"display_progress": False}
    )


def _random_search(train, dev):
    with contextlib.redirect_stdout(io.StringIO()):
        optimizer = dspy.BootstrapFewShotWithRandomSearch(
            metric=exact_match, max_bootstrapped_demos=2, num_candidate_programs=1
        )
        return optimizer, optimizer.compile(QA(), trainset=train[:8], valset=dev[:4])


RUNS = {
    "SIMBA": _simba,
    "MIPROv2": _mipro,
    "GEPA": _gepa,
    "COPRO": _copro,
    "BootstrapFewShotWithRandomSearch": _random_search,
}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("name", sorted(RUNS))
def test_nothing_of_dspex_stays_on_what_compile_hands_back(name, lm, arith, store, tmp_path):
    train, dev = arith
    with dspex.experiment(name, program=QA(), program_name="qa", store=store) as exp:
        optimizer, program = RUNS[name](train, dev)
    assert program.dspex_trial_id in {t.id for t in store.get_experiment(exp.id).trials}
    assert dspex_marks(program, optimizer) == [("root0", "dspex_trial_id")]
    program.save(tmp_path / "saved", save_program=True)
    saved = b"".join(p.read_bytes() for p in (tmp_path / "saved").iterdir())
    assert b"_dspex" not in saved
    loaded = dspy.load(str(tmp_path / "saved"), allow_pickle=True)
    assert dspex_marks(loaded) == [("root0", "dspex_trial_id")]
