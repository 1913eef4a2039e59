"""The same evaluation on every worker adapter: identical results, one unbroken trace."""

from __future__ import annotations

import os
import time

import dspy
import pytest

import dspex
from dspex import EventKind, ResultStore
from dspex.offline import exact_match, load_arith

ADAPTERS = ["inline", "thread", "process", pytest.param("ray", marks=pytest.mark.ray)]


class Solver(dspy.Module):
    def __init__(self):
        super().__init__()
        self.answer = dspy.Predict("question -> answer")

    def forward(self, question):
        if "CRASH" in question:
            os._exit(7)  # a worker that dies holding this example
        if "STALL" in question:
            time.sleep(60)  # far longer than the task timeout of the test (the worker is killed)
        if "PAUSE" in question:
            time.sleep(4)  # past a 3 s task timeout, back while the evaluation goes on
        if "SLOW" in question:
            time.sleep(2)
        return self.answer(question=question)


def _configure(adapter: str, request: pytest.FixtureRequest, **extra) -> None:
    if adapter == "ray":
        request.getfixturevalue("ray_session")
    pooling = adapter != "inline"
    dspex.configure(
        workers={
            "adapter": adapter if pooling else "thread",
            "pooling_enabled": pooling,
            "worker_shutdown_grace_period": 1.0,
            # a loaded 2-core machine can take more than the default 10 s to start a worker
            "worker_init_timeout": 60.0,
            "pool_startup_timeout": 90.0,
            **extra,
        },
        evaluation={"harness_pool_size": 2},
    )


def _evaluate(devset, metric=exact_match):
    lm = dspex.offline_lm(seed=3)
    store = ResultStore.open("memory://")
    with (
        dspy.context(lm=lm),
        dspex.experiment("adapters", program_name="solver", store=store) as exp,
    ):
        trial = exp.evaluate(Solver(), devset, metric)
    return lm, store.get_trial(exp.id, trial.id)


@pytest.fixture(scope="module")
def reference():
    """The evaluation in the calling thread: the results every adapter must reproduce."""
    with dspex.config.overrides(workers={"pooling_enabled": False}):
        lm, trial = _evaluate(load_arith()[1])
    assert len([e for e in trial.events if e.kind is EventKind.LM_CALL]) == lm.engine.calls
    return trial


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_every_adapter_gives_identical_results_and_a_whole_trace(adapter, request, reference):
    expected = reference
    _configure(adapter, request)
    lm, trial = _evaluate(load_arith()[1])
    got = [(r.index, r.prediction, r.metrics, r.error) for r in trial.example_results]
    want = [(r.index, r.prediction, r.metrics, r.error) for r in expected.example_results]
    assert got == want
    assert trial.score == expected.score
    lm_calls = [e for e in trial.events if e.kind is EventKind.LM_CALL]
    assert len(lm_calls) == len([e for e in expected.events if e.kind is EventKind.LM_CALL])
    if adapter in ("inline", "thread"):  # in other processes the LM counts in its copies
        assert len(lm_calls) == lm.engine.calls
    assert [e.sequence for e in trial.events] == list(range(len(trial.events)))
    ids = {e.id for e in trial.events}
    assert all(e.parent_id is None or e.parent_id in ids for e in trial.events)
    pids = {e.pid for e in lm_calls}
    if adapter in ("process", "ray"):
        assert os.getpid() not in pids
        assert {r.worker for r in trial.example_results} <= {"worker-1", "worker-2"}
    else:
        assert pids == {os.getpid()}
    assert all(e.payload["module"] == "solver.answer" for e in lm_calls)


@pytest.mark.parametrize("adapter", ["process", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_crashing_worker_fails_only_its_example(adapter, request):
    _configure(adapter, request)
    devset = load_arith()[1][:6]
    crash = dspy.Example(question="CRASH now", answer="0").with_inputs("question")
    _, trial = _evaluate([*devset[:3], crash, *devset[3:]])
    failed = [r for r in trial.example_results if r.error]
    assert [r.index for r in failed] == [3]
    assert "WorkerCrashed" in failed[0].error.type
    assert "exit" in failed[0].error.message or "died" in failed[0].error.message
    assert len(trial.example_results) == 7
    ok = [r for r in trial.example_results if not r.error]
    assert trial.score == pytest.approx(sum(r.metrics["exact_match"] for r in ok) / 7)


@pytest.mark.parametrize(
    "adapter", ["thread", "process", pytest.param("ray", marks=pytest.mark.ray)]
)
def test_an_example_past_the_task_timeout_fails_alone(adapter, request):
    # 5 s: an ordinary example on a loaded 2-core machine can take more than 1 s
    _configure(adapter, request, task_timeout=5.0)
    devset = load_arith()[1][:4]
    stall = dspy.Example(question="STALL here", answer="0").with_inputs("question")
    _, trial = _evaluate([*devset[:2], stall, *devset[2:]])
    failed = [r for r in trial.example_results if r.error]
    assert [r.index for r in failed] == [2]
    assert "WorkerTimeout" in failed[0].error.type
    assert len([r for r in trial.example_results if not r.error]) == 4
    assert any(
        e.kind is EventKind.ERROR and e.payload["failure"] == "timeout" for e in trial.events
    )


def test_a_timed_out_example_whose_worker_comes_back_later_adds_nothing_to_the_trial(request):
    """A pool of one thread: the worker given up on at 3 s makes its LM call at 4 s, while
    the next example still runs on its replacement; the trial records the time-out, not
    the events of an example it reports as failed."""
    from tests.capture.conftest import AdditionEngine, addition_lm

    _configure("thread", request, task_timeout=3.0)
    dspex.configure(evaluation={"harness_pool_size": 1})
    questions = ["3 + 4", "PAUSE: 1 + 1", "SLOW: 2 + 2", "5 + 6"]
    devset = [
        dspy.Example(question=q, answer=str(sum(map(int, q.split(":")[-1].split(" + ")))))
        for q in questions
    ]
    engine = AdditionEngine()
    store = ResultStore.open("memory://")
    with (
        dspy.context(lm=addition_lm(engine)),
        dspex.experiment("timeouts", program_name="solver", store=store) as exp,
    ):
        done = exp.evaluate(Solver(), [e.with_inputs("question") for e in devset], exact_match)
    trial = store.get_trial(exp.id, done.id)
    assert [r.index for r in trial.example_results if r.error] == [1]
    assert "WorkerTimeout" in trial.example_results[1].error.type
    assert engine.calls == 4  # the abandoned worker came back and called the LM
    lm_calls = [e for e in trial.events if e.kind is EventKind.LM_CALL]
    assert len(lm_calls) == 3
    assert not any("PAUSE" in str(e.payload["messages"]) for e in lm_calls)
    assert [e.sequence for e in trial.events] == list(range(len(trial.events)))


class Doubler(dspy.Module):
    """Another program: answers twice the number, so each evaluation's program is visible."""

    def __init__(self, times: int):
        super().__init__()
        self.times = times
        self.answer = dspy.Predict("question -> answer")

    def forward(self, question):
        return dspy.Prediction(answer=str(self.times), worker_pid=os.getpid())


def _same(example, prediction, trace=None):
    return float(prediction.answer == example.times)


@pytest.mark.parametrize(
    "adapter", ["thread", "process", pytest.param("ray", marks=pytest.mark.ray)]
)
def test_one_pool_serves_every_evaluation_of_an_experiment(adapter, request):
    """Workers start once per experiment; each evaluation still runs its own program."""
    _configure(adapter, request)
    examples = [
        dspy.Example(question=f"q{i}", times=str(t)).with_inputs("question")
        for i, t in enumerate([1, 2, 3, 1])
    ]
    store = ResultStore.open("memory://")
    with dspex.experiment("pool reuse", store=store) as exp:
        trials = [exp.evaluate(Doubler(t), examples, _same, name=f"x{t}") for t in (1, 2, 3)]
        assert exp.harness.pools_started == 1
        pids = [{r.prediction["worker_pid"] for r in t.example_results} for t in trials]
    assert [t.score for t in trials] == [0.5, 0.25, 0.25]
    if adapter != "thread":
        assert pids[0] == pids[1] == pids[2] and os.getpid() not in pids[0]
    assert exp.harness.pools_started == 1  # and stopped with the block: a new one would be #2
    assert exp.harness._pool is None
