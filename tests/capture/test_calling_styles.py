"""Every LM call made inside ``dspex.experiment`` lands in the experiment, in every calling style.

Each test runs twice: with an LM written here (``AdditionEngine`` in conftest.py, which
dspex did not write) and with dspex's offline LM, and compares the ``lm_call`` events of
the sealed experiment with the LM's own call counter: equal, never more, never fewer.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import dspy
import pytest

import dspex
from dspex import EventKind, ExperimentStatus
from dspex.offline import ArithQA

from .conftest import AdditionEngine, addition_lm, addition_set, exact


@pytest.fixture(params=["lm written here", "offline lm"])
def counted(request):
    """(a function returning the LM's own call count); the LM is configured in context."""
    if request.param == "lm written here":
        engine = AdditionEngine()
        lm = addition_lm(engine)

        def count() -> int:
            return engine.calls
    else:
        lm = dspex.offline_lm()

        def count() -> int:
            return lm.engine.calls

    # configured for the process, as a user does: plain threads do not see dspy.context
    previous = dspy.settings.lm
    dspy.configure(lm=lm)
    try:
        yield count
    finally:
        dspy.configure(lm=previous)


@pytest.fixture
def store():
    return dspex.ResultStore.open("memory://")


def lm_calls(experiment: dspex.Experiment) -> list[dspex.TraceEvent]:
    return [e for t in experiment.trials for e in t.events if e.kind is EventKind.LM_CALL]


def questions(n: int, offset: int = 0) -> list[str]:
    return [f"What is {i} + {i + offset}?" for i in range(n)]


def sealed(store, run) -> dspex.Experiment:
    archived = store.get_experiment(run.id)
    assert archived.status is ExperimentStatus.COMPLETED
    return archived


def test_direct_calls_are_recorded_one_root_per_call(counted, store):
    program = ArithQA()
    with dspex.experiment("direct", program=program, store=store) as run:
        answers = [program(question=q).answer for q in questions(200)]
    archived = sealed(store, run)
    assert answers == [str(2 * i) for i in range(200)]
    assert len(lm_calls(archived)) == counted() == 200
    (calls,) = [t for t in archived.trials if t.metadata.get("role") == "calls"]
    roots = [e for e in calls.events if e.kind is EventKind.MODULE_START and e.parent_id is None]
    assert len(roots) == 200 and {r.payload["module"] for r in roots} == {"arithqa"}
    starts = {e.id: e for e in calls.events if e.kind is EventKind.MODULE_START}
    # each LM call sits in the Predict call made by its own top-level call
    for call in lm_calls(archived):
        predict = starts[call.parent_id]
        assert predict.payload["module"] == "arithqa.predict"
        assert starts[predict.parent_id].parent_id is None
    assert calls.variables.predictors["arithqa.predict"].signature == "question -> answer"


def test_async_calls_acall_and_asyncify_are_recorded(counted, store):
    program = ArithQA()

    async def main() -> list[str]:
        direct = [await program.acall(question=q) for q in questions(10)]
        wrapped = dspy.asyncify(program)
        threaded = await asyncio.gather(*(wrapped(question=q) for q in questions(10, 1)))
        return [p.answer for p in [*direct, *threaded]]

    with dspex.experiment("async", program=program, store=store) as run:
        answers = asyncio.run(main())
    assert len(answers) == 20
    assert len(lm_calls(sealed(store, run))) == counted() == 20


def test_batch_and_parallel_are_recorded(counted, store):
    program = ArithQA()
    examples = [dspy.Example(question=q).with_inputs("question") for q in questions(10)]
    with dspex.experiment("batch", program=program, store=store) as run:
        program.batch(examples, num_threads=4)
        dspy.Parallel(num_threads=4)([(program, ex) for ex in examples])
    archived = sealed(store, run)
    assert len(lm_calls(archived)) == counted() == 20
    assert len({e.worker for e in lm_calls(archived)}) > 1


def test_dspy_evaluate_without_autolog_is_an_evaluation_trial(counted, store):
    program = ArithQA()
    devset = addition_set(20)
    with dspex.experiment("evaluate", program=program, store=store) as run:
        dspy.Evaluate(devset=devset, metric=exact, num_threads=4, display_progress=False)(program)
    archived = sealed(store, run)
    (trial,) = archived.trials
    assert trial.metadata["role"] == "evaluation" and trial.score == 1.0
    assert len(trial.example_results) == 20 and trial.score_scope.n == 20
    assert len(lm_calls(archived)) == counted() == 20


def test_a_compile_started_in_a_plain_thread_is_recorded(counted, store):
    program, train = ArithQA(), addition_set(4)
    optimizer = dspy.BootstrapFewShot(metric=exact, max_bootstrapped_demos=2, max_rounds=1)
    with dspex.experiment("threaded compile", program=program, store=store) as run:
        thread = threading.Thread(
            target=optimizer.compile, args=(program,), kwargs={"trainset": train}
        )
        thread.start()
        thread.join()
    archived = sealed(store, run)
    compiles = [t.name for t in archived.trials if t.metadata.get("role") == "compile"]
    assert "BootstrapFewShot compile" in compiles and archived.optimizer.name == "BootstrapFewShot"
    assert len(lm_calls(archived)) == counted() >= 2


def test_plain_threads_and_executors_started_in_the_block_are_recorded(counted, store):
    program = ArithQA()

    def ask(q: str) -> str:
        return program(question=q).answer

    with dspex.experiment("threads", program=program, store=store) as run:
        threads = [threading.Thread(target=ask, args=(q,)) for q in questions(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(ask, questions(9, 2)))
    archived = sealed(store, run)
    assert len(lm_calls(archived)) == counted() == 14
    assert not archived.warnings


class AsyncOnly(dspy.Module):
    """A module that defines only ``aforward``."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    async def aforward(self, question: str) -> dspy.Prediction:
        return await self.predict.acall(question=question)


def _example_view(trial: dspex.Trial) -> list[tuple]:
    return [
        (r.index, r.inputs, r.labels, r.prediction, r.metrics, r.error)
        for r in trial.example_results
    ]


def test_exp_evaluate_and_aevaluate_run_async_only_programs_with_the_same_records(counted, store):
    program, devset = AsyncOnly(), addition_set(8)
    with dspex.experiment("async only", program=program, store=store) as run:
        sync_trial = run.evaluate(program, devset, exact, name="sync")

        async def evaluate_async() -> dspex.Trial:
            return await run.aevaluate(program, devset, exact, name="async")

        async_trial = asyncio.run(evaluate_async())
    assert sync_trial.score == async_trial.score == 1.0
    assert all(r.error is None for r in sync_trial.example_results)
    assert _example_view(sync_trial) == _example_view(async_trial)
    assert sync_trial.score_scope == async_trial.score_scope
    kinds = [sorted(e.kind.value for e in t.events) for t in (sync_trial, async_trial)]
    assert kinds[0] == kinds[1]
    assert len(lm_calls(sealed(store, run))) == counted() == 16


def test_calls_between_evaluations_are_separate_runs_of_direct_calls(counted, store):
    program, devset = ArithQA(), addition_set(3)
    with dspex.experiment("runs", program=program, store=store) as run:
        program(question="What is 1 + 1?")
        run.evaluate(program, devset, exact)
        program(question="What is 2 + 2?")
        program(question="What is 3 + 3?")
    archived = sealed(store, run)
    roles = [t.metadata["role"] for t in archived.trials]
    assert roles == ["calls", "evaluation", "calls"]
    assert [t.name for t in archived.trials if t.metadata["role"] == "calls"] == [
        "direct calls 1",
        "direct calls 2",
    ]
    assert len(lm_calls(archived)) == counted() == 6


def test_threads_without_context_while_two_experiments_run_are_a_warning_on_both(store):
    """Nobody can tell which of two open experiments a context-free thread's call belongs
    to: it is recorded in neither, and both say so, naming the thread."""
    engine = AdditionEngine()
    lm = addition_lm(engine)
    program = ArithQA()
    started, release = threading.Barrier(3), threading.Event()
    runs: list = []

    def experiment(name: str) -> None:
        with dspy.context(lm=lm), dspex.experiment(name, program=program, store=store) as run:
            runs.append(run)
            started.wait()
            release.wait()

    def outsider() -> None:
        with dspy.context(lm=lm):
            program(question="What is 1 + 2?")

    owners = [threading.Thread(target=experiment, args=(n,)) for n in ("a", "b")]
    for owner in owners:
        owner.start()
    started.wait()
    thread = threading.Thread(target=outsider, name="outsider")
    thread.start()
    thread.join()
    release.set()
    for owner in owners:
        owner.join()
    assert len(runs) == 2 and engine.calls == 1
    for run in runs:
        archived = sealed(store, run)
        assert not lm_calls(archived)
        (warning,) = archived.warnings
        assert "outsider" in warning and "not recorded" in warning


def test_a_metric_that_raises_under_dspy_evaluate_is_recorded_with_its_traceback(counted, store):
    def fussy(example, prediction, trace=None):
        if example.question.startswith("What is 1 "):
            raise ZeroDivisionError("fussy metric divided by zero")
        return exact(example, prediction)

    program = ArithQA()
    with dspex.experiment("metric error", program=program, store=store) as run:
        dspy.Evaluate(devset=addition_set(4), metric=fussy, display_progress=False)(program)
    (trial,) = sealed(store, run).trials
    failed = [r for r in trial.example_results if r.error is not None]
    assert [r.index for r in failed] == [1]
    assert failed[0].error.type == "builtins.ZeroDivisionError"
    assert failed[0].error.message == "fussy metric divided by zero"
    assert (
        "fussy" in failed[0].error.traceback
        and "raise ZeroDivisionError" in failed[0].error.traceback
    )
    assert trial.score == 0.75
    (score,) = [e for e in trial.events if e.kind is EventKind.TRIAL_SCORE]
    assert score.payload["failures"] == 1


def test_calls_made_after_the_callback_was_replaced_are_still_recorded(counted, store):
    """dspy.configure/dspy.context(callbacks=[...]) in the block drops dspex's callback;
    the LM calls made there are kept, from DSPy's own LM history."""
    from dspy.utils.callback import BaseCallback

    program = ArithQA()
    with dspex.experiment("replaced", program=program, store=store) as run:
        with dspy.context(callbacks=[BaseCallback()]):
            program(question="What is 1 + 1?")
        previous = dspy.settings.callbacks
        dspy.configure(callbacks=[])
        try:
            program(question="What is 2 + 2?")
        finally:
            dspy.configure(callbacks=previous)
    calls = lm_calls(sealed(store, run))
    assert len(calls) == counted() == 2
    assert all("not active" in c.payload["recorded_from"] for c in calls)
    assert [c.payload["messages"][-1]["content"].count("What is") for c in calls] == [1, 1]
