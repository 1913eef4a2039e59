"""dspex.experiment + EvaluationHarness on real DSPy programs: what lands in the store."""

from __future__ import annotations

import dspy
import pytest

import dspex
from dspex import EventKind, ExperimentStatus
from dspex.offline import ArithQA
from dspex.store.memory import MemoryBackend

from .conftest import addition_set, exact

QA = ArithQA  # the bundled one-predictor program


def test_evaluation_is_archived_with_every_lm_call(lm, engine, store):
    program = QA()
    with dspex.experiment(
        "adds",
        program=program,
        program_name="qa",
        store=store,
        hypothesis="The LM can add",
        tags=["unit"],
        pool_size=4,
    ) as exp:
        trial = exp.evaluate(program, addition_set(12), exact)
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.COMPLETED
    assert (
        archived.hypothesis is not None
        and archived.hypothesis.research_question == "The LM can add"
    )
    assert archived.trials == (trial,)
    assert trial.score == 1.0
    lm_calls = [e for e in trial.events if e.kind is EventKind.LM_CALL]
    assert len(lm_calls) == engine.calls == 12
    first = lm_calls[0].payload
    assert first["module"] == "qa.predict"
    assert first["model"] == "test/addition"
    assert first["messages"][0]["role"] == "system"
    assert first["usage"]["total_tokens"] > 0
    assert first["settings"]["temperature"] == 0.0
    assert first["cache_hit"] is False
    # every LM call sits inside the Predict call that made it
    starts = {e.id: e for e in trial.events if e.kind is EventKind.MODULE_START}
    assert all(
        e.parent_id in starts and starts[e.parent_id].payload["module"] == "qa.predict"
        for e in lm_calls
    )
    assert [e.sequence for e in trial.events] == list(range(len(trial.events)))
    workers = {r.worker for r in trial.example_results}
    assert workers <= {"worker-1", "worker-2", "worker-3", "worker-4"} and len(workers) > 1
    assert archived.summary is not None and archived.summary.metrics["exact"].mean == 1.0
    assert archived.best_trial_id == trial.id
    assert trial.variables.predictors["qa.predict"].signature == "question -> answer"


def test_program_and_metric_errors_are_recorded_on_the_example(lm, store):
    program = QA()
    data = addition_set(3) + [
        dspy.Example(question="explode 1 + 1", answer="2").with_inputs("question")
    ]

    def picky(example, prediction, trace=None):
        if example.question.startswith("What is 0"):
            raise ValueError("metric cannot judge 0")
        return exact(example, prediction)

    with dspex.experiment("errors", program=program, store=store, pool_size=2) as exp:
        trial = exp.evaluate(program, data, picky)
    results = {r.index: r for r in trial.example_results}
    assert results[3].error is not None and "exploded" in results[3].error.message
    assert "Traceback" in results[3].error.traceback
    assert results[0].error is not None and "metric cannot judge 0" in results[0].error.message
    assert trial.score == pytest.approx(2 / 4)
    errors = [e for e in trial.events if e.kind is EventKind.MODULE_END and e.payload["error"]]
    assert errors and "exploded" in errors[0].payload["error"]["message"]
    assert store.get_experiment(exp.id).status is ExperimentStatus.COMPLETED


def test_exception_in_block_marks_failed_and_archives_finished_trials(lm, store):
    program = QA()
    with pytest.raises(RuntimeError, match="optimizer broke"):
        with dspex.experiment("boom", program=program, store=store) as exp:
            exp.evaluate(program, addition_set(2), exact)
            raise RuntimeError("optimizer broke")
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.FAILED
    assert len(archived.trials) == 1 and archived.trials[0].score == 1.0
    assert "optimizer broke" in archived.metadata["error"]["message"]


def test_keyboard_interrupt_marks_interrupted(lm, store):
    program = QA()
    with pytest.raises(KeyboardInterrupt):
        with dspex.experiment("ctrl-c", program=program, store=store) as exp:
            exp.evaluate(program, addition_set(2), exact)
            raise KeyboardInterrupt
    assert store.get_experiment(exp.id).status is ExperimentStatus.INTERRUPTED


def test_trials_reach_the_store_before_the_experiment_ends(lm, store):
    program = QA()
    with dspex.experiment("incremental", program=program, store=store) as exp:
        trial = exp.evaluate(program, addition_set(2), exact)
        running = store.get_experiment(exp.id)
        assert running.status is ExperimentStatus.RUNNING
        assert [t.id for t in running.trials] == [trial.id]


def test_dspy_parallel_threads_attribute_events_to_the_trial(lm, engine, store):
    """dspy.Evaluate(num_threads=4) inside a trial: no orphan events, all calls counted."""
    from dspex.capture import TrialRecorder, instrumented, recording, shared_callback
    from dspex.capture.dspy_bridge import ensure_callback

    program = QA()
    recorder = TrialRecorder(dspex.new_id("trl"))
    ensure_callback(shared_callback())
    with instrumented(), recording(recorder):
        dspy.Evaluate(devset=addition_set(16), metric=exact, num_threads=4, display_progress=False)(
            program
        )
    events = recorder.events()
    lm_calls = [e for e in events if e.kind is EventKind.LM_CALL]
    assert len(lm_calls) == engine.calls == 16
    ids = {e.id for e in events}
    assert all(e.parent_id in ids for e in lm_calls)
    assert len({e.worker for e in lm_calls}) > 1


def test_an_unreachable_store_fails_when_the_experiment_starts(lm):
    store = dspex.ResultStore.open("postgresql://dspex:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(dspex.StoreUnavailable) as info:
        with dspex.experiment("no store", program=QA(), store=store):
            pytest.fail("the block must not run without a store")
    message = str(info.value)
    assert "127.0.0.1:1/nowhere" in message
    assert "hunter2" not in message


def test_a_bare_predict_is_named_by_itself_not_predict_self(lm, store):
    """A program that is a lone dspy.Predict: its predictor is `predict`, its demos
    `predict` demos (not `predict.self`), in the variables and in the module events."""
    program = dspy.Predict("question -> answer")
    with dspex.experiment("bare", program=program, store=store) as exp:
        trial = exp.evaluate(program, addition_set(2), exact)
    assert list(trial.variables.predictors) == ["predict"]
    modules = {e.payload["module"] for e in trial.events if e.kind is EventKind.MODULE_START}
    assert modules == {"predict"}


class InterruptedWhileSerializing(MemoryBackend):
    """Ctrl-C landing while a trial is serialized: pydantic-core reports it as a
    PydanticSerializationError (a ValueError) that names the KeyboardInterrupt."""

    def write_trial(self, experiment_id, trial):
        from typing import Annotated

        from pydantic import PlainSerializer, TypeAdapter

        def interrupted(value):
            raise KeyboardInterrupt

        TypeAdapter(Annotated[int, PlainSerializer(interrupted)]).dump_json(1)


def test_ctrl_c_while_a_trial_is_serialized_interrupts_the_experiment(lm):
    store = dspex.ResultStore(InterruptedWhileSerializing())
    with pytest.raises(KeyboardInterrupt):
        with dspex.experiment("ctrl-c", program=ArithQA(), store=store) as exp:
            exp.evaluate(ArithQA(), addition_set(2), exact)
            raise AssertionError("the run went on past Ctrl-C")
    assert store.get_experiment(exp.id).status is dspex.ExperimentStatus.INTERRUPTED


def test_exp_evaluate_makes_dspy_log_no_warning(lm, store, caplog):
    """Asking whether a program is async-only must not read program.forward, which makes
    DSPy log "Calling module.forward(...) directly is discouraged" once per example."""
    with caplog.at_level("WARNING"):
        with dspex.experiment("quiet", program=ArithQA(), store=store) as exp:
            exp.evaluate(ArithQA(), addition_set(3), exact)
    assert not [r for r in caplog.records if "forward" in r.getMessage()]
