"""dspex.autolog(): compiles and dspy.Evaluate calls become archived experiments, untouched code."""

from __future__ import annotations

import dspy
import pytest
from dspy.dsp.utils.settings import main_thread_config
from dspy.teleprompt import Teleprompter

import dspex
from dspex import EventKind, ExperimentStatus, ResultStore
from dspex.capture import shared_callback
from dspex.capture.context import LISTENER_KEY, lookup
from dspex.store.memory import MemoryBackend
from dspex.tracking.autolog import autolog_listener

from .conftest import addition_set, exact


class QA(dspy.Module):
    def __init__(self):
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    def forward(self, question):
        return self.predict(question=question)


class EvaluatingOptimizer(Teleprompter):
    """A tiny optimizer: evaluates the student with dspy.Evaluate, or fails on request."""

    def __init__(self, devset, fail_with: BaseException | None = None):
        super().__init__()
        self.devset = devset
        self.fail_with = fail_with
        self.rounds = 1

    def compile(self, student, *, trainset, **kwargs):
        student(question="What is 1 + 1?")
        if self.fail_with is not None:
            raise self.fail_with
        dspy.Evaluate(devset=self.devset, metric=exact, num_threads=2, display_progress=False)(
            student
        )
        return student


@pytest.fixture
def autolog(lm, store):
    dspex.autolog(store=store)
    yield store
    dspex.autolog(disable=True)


def only_experiment(store: ResultStore) -> dspex.Experiment:
    summaries = store.query_experiments()
    assert len(summaries) == 1, [s.name for s in summaries]
    return store.get_experiment(summaries[0].id)


def lm_calls(trial) -> list:
    return [e for e in trial.events if e.kind is EventKind.LM_CALL]


def test_evaluate_outside_any_trial_is_an_experiment_with_one_trial(autolog, engine):
    result = dspy.Evaluate(
        devset=addition_set(12), metric=exact, num_threads=4, display_progress=False
    )(QA())
    assert result.score == 100.0 and len(result.results) == 12
    archived = only_experiment(autolog)
    assert archived.status is ExperimentStatus.COMPLETED
    assert archived.name == "Evaluate: qa" and "autolog" in archived.tags
    (trial,) = archived.trials
    assert len(lm_calls(trial)) == engine.calls == 12
    starts = {e.id for e in trial.events if e.kind is EventKind.MODULE_START}
    assert all(e.parent_id in starts for e in lm_calls(trial))
    assert len({e.worker for e in lm_calls(trial)}) > 1  # Evaluate's own threads
    assert [e.sequence for e in trial.events] == list(range(len(trial.events)))
    assert [r.index for r in trial.example_results] == list(range(12))
    first = trial.example_results[3]
    assert first.inputs == {"question": "What is 3 + 3?"} and first.labels == {"answer": "6"}
    assert first.prediction == {"answer": "6"} and first.metrics == {"exact": 1.0}
    assert trial.score == 1.0 and trial.metadata["dspy_score"] == 100.0
    # each example's worker, latency and tokens, from the calls made with its inputs
    assert {r.worker for r in trial.example_results} == {e.worker for e in lm_calls(trial)}
    by_question = {e.payload["messages"][-1]["content"]: e for e in lm_calls(trial)}
    for r in trial.example_results:
        (call,) = [e for q, e in by_question.items() if r.inputs["question"] in q]
        assert r.worker == call.worker and r.tokens == call.payload["usage"]["total_tokens"] > 0
        assert r.latency_ms is not None and r.latency_ms >= call.payload["latency_ms"]
    results = [e for e in trial.events if e.kind is EventKind.EXAMPLE_RESULT]
    assert sorted(e.payload["example"] for e in results) == list(range(12))
    (score,) = [e for e in trial.events if e.kind is EventKind.TRIAL_SCORE]
    assert trial.score_scope is not None and trial.score_scope.n == 12
    assert score.payload == {
        "score": 1.0,
        "metric": "exact",
        "n": 12,
        "failures": 0,
        "scope": "dev",
        "fingerprint": trial.score_scope.fingerprint,
    }
    assert trial.variables.predictors["qa.predict"].signature == "question -> answer"


def test_failing_examples_are_recorded_as_errors(autolog):
    data = addition_set(3) + [
        dspy.Example(question="explode 1 + 1", answer="2").with_inputs("question")
    ]
    result = dspy.Evaluate(devset=data, metric=exact, num_threads=2, display_progress=False)(QA())
    assert result.score == 75.0
    (trial,) = only_experiment(autolog).trials
    failed = trial.example_results[3]
    assert failed.error is not None and failed.prediction is None
    # DSPy 3.4 wraps the engine's exception in its own; DSPy 3.2 and 3.3 pass it on
    assert failed.error.type in ("dspy.utils.exceptions.LMUnexpectedError", "builtins.RuntimeError")
    assert "the engine exploded" in failed.error.traceback
    assert failed.metrics == {"exact": 0.0}
    assert trial.score == pytest.approx(3 / 4)
    assert any(
        e.kind is EventKind.MODULE_END and e.payload["error"] and "exploded" in str(e.payload)
        for e in trial.events
    )


def test_a_metric_that_raises_is_recorded_with_its_type_message_and_traceback(autolog):
    def strict(example, prediction, trace=None):
        if example.question == "What is 2 + 2?":
            raise KeyError("no such grading rule")
        return exact(example, prediction)

    evaluate = dspy.Evaluate(devset=addition_set(3), metric=strict, display_progress=False)
    evaluate(QA())
    (trial,) = only_experiment(autolog).trials
    failed = [r for r in trial.example_results if r.error is not None]
    assert [r.index for r in failed] == [2]
    assert failed[0].error.type == "builtins.KeyError"
    assert "no such grading rule" in failed[0].error.message
    assert 'raise KeyError("no such grading rule")' in failed[0].error.traceback
    # the program's output was fine: the example says what the metric did
    assert not [e for e in trial.events if e.kind is EventKind.MODULE_END and e.payload["error"]]


def test_compile_is_an_experiment_with_optimizer_and_settings(autolog, engine):
    program = QA()
    compiled = dspy.BootstrapFewShot(metric=exact, max_bootstrapped_demos=2).compile(
        program, trainset=addition_set(4)
    )
    assert compiled(question="What is 20 + 22?").answer == "42"
    calls_in_compile = engine.calls - 1
    archived = only_experiment(autolog)
    assert archived.status is ExperimentStatus.COMPLETED
    assert archived.name == "BootstrapFewShot: qa"
    assert archived.optimizer is not None and archived.optimizer.name == "BootstrapFewShot"
    assert archived.optimizer.settings["max_bootstrapped_demos"] == 2
    assert archived.optimizer.settings["metric"] == "<exact>"
    assert archived.trials and all(t.experiment_id == archived.id for t in archived.trials)
    assert sum(len(lm_calls(t)) for t in archived.trials) == calls_in_compile > 0
    kinds = {e.kind for t in archived.trials for e in t.events}
    assert {EventKind.OPTIMIZER_START, EventKind.OPTIMIZER_END} <= kinds
    # the compile's journal is no longer active once compile returned
    assert lookup(LISTENER_KEY) is None and dspex.capture.active_recorder() is None


def test_evaluate_inside_a_compile_is_a_trial_of_its_experiment(autolog, engine):
    EvaluatingOptimizer(addition_set(4)).compile(QA(), trainset=addition_set(2))
    archived = only_experiment(autolog)
    assert archived.name == "EvaluatingOptimizer: qa"
    roles = {t.metadata.get("role"): t for t in archived.trials}
    assert set(roles) == {"compile", "evaluation"}
    evaluation = roles["evaluation"]
    assert evaluation.metadata["source"] == "dspy.Evaluate" and evaluation.score == 1.0
    assert len(lm_calls(evaluation)) == 4 and len(lm_calls(roles["compile"])) == 1
    assert engine.calls == 5


def test_evaluate_inside_an_experiment_is_a_trial_of_it(autolog):
    program = QA()
    with dspex.experiment("manual", program=program, store=autolog) as exp:
        exp.evaluate(program, addition_set(2), exact)
        dspy.Evaluate(devset=addition_set(3), metric=exact, display_progress=False)(program)
    archived = only_experiment(autolog)
    assert archived.id == exp.id and len(archived.trials) == 2
    assert archived.trials[1].metadata["source"] == "dspy.Evaluate"
    assert len(archived.trials[1].example_results) == 3


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RuntimeError("optimizer broke"), ExperimentStatus.FAILED),
        (KeyboardInterrupt(), ExperimentStatus.INTERRUPTED),
    ],
)
def test_compile_that_raises_is_sealed_failed_or_interrupted(autolog, error, status):
    with pytest.raises(type(error)):
        EvaluatingOptimizer(addition_set(2), fail_with=error).compile(
            QA(), trainset=addition_set(2)
        )
    archived = only_experiment(autolog)
    assert archived.status is status
    assert archived.trials[0].status.value == "failed"
    assert lookup(LISTENER_KEY) is None


def test_disable_restores_callbacks_and_records_nothing(lm, store):
    thread_view, global_view = list(dspy.settings.callbacks), list(main_thread_config["callbacks"])
    dspex.autolog(store=store)
    assert shared_callback() in dspy.settings.callbacks
    assert shared_callback() in main_thread_config["callbacks"]
    dspex.autolog(disable=True)
    assert list(dspy.settings.callbacks) == thread_view
    assert list(main_thread_config["callbacks"]) == global_view
    assert autolog_listener() is None
    dspy.Evaluate(devset=addition_set(2), metric=exact, display_progress=False)(QA())
    EvaluatingOptimizer(addition_set(2)).compile(QA(), trainset=addition_set(2))
    assert store.count_experiments() == 0


class BrokenBackend(MemoryBackend):
    def write_running(self, experiment):
        raise OSError("disk on fire")

    def write_trial(self, experiment_id, trial):
        raise OSError("disk on fire")

    def seal(self, experiment, checksum):
        raise OSError("disk on fire")


def test_a_broken_store_warns_and_leaves_the_program_alone(lm):
    dspex.autolog(store=ResultStore(BrokenBackend()))
    try:
        with pytest.warns(RuntimeWarning, match="dspex autolog could not record"):
            result = dspy.Evaluate(devset=addition_set(3), metric=exact, display_progress=False)(
                QA()
            )
        assert result.score == 100.0 and len(result.results) == 3
        with pytest.warns(RuntimeWarning, match="disk on fire"):
            compiled = EvaluatingOptimizer(addition_set(2)).compile(QA(), trainset=addition_set(1))
        assert compiled(question="What is 2 + 2?").answer == "4"
    finally:
        dspex.autolog(disable=True)
    assert lookup(LISTENER_KEY) is None and dspex.capture.active_recorder() is None


def test_autolog_reaches_threads_that_start_later(autolog, lm, engine):
    """Installed globally: a thread with no dspy.context of its own is recorded too."""
    import threading

    def run():
        with dspy.context(lm=lm):
            dspy.Evaluate(devset=addition_set(2), metric=exact, display_progress=False)(QA())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    (trial,) = only_experiment(autolog).trials
    assert len(lm_calls(trial)) == engine.calls == 2


class UnwalkableQA(QA):
    """A program dspex cannot describe: walking its sub-modules raises."""

    def named_sub_modules(self, *args, **kwargs):
        raise RuntimeError("cannot walk this program")


def test_a_capture_failure_warns_and_closes_the_experiment_it_opened(autolog):
    with pytest.warns(RuntimeWarning, match="cannot walk this program"):
        result = dspy.Evaluate(devset=addition_set(2), metric=exact, display_progress=False)(
            UnwalkableQA()
        )
    assert result.score == 100.0
    archived = only_experiment(autolog)
    assert archived.status is ExperimentStatus.FAILED and archived.trials == ()
    assert "cannot walk this program" in archived.metadata["error"]["message"]
    assert lookup(LISTENER_KEY) is None and dspex.capture.active_recorder() is None
