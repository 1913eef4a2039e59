"""Capture drops nothing at any call rate, and never waits on the store in the calling thread."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import dspy
import pytest
from dspy.dsp.utils.settings import thread_local_overrides

import dspex
from dspex import EventKind, ResultStore
from dspex.capture import TrialRecorder, recording, shared_callback
from dspex.capture.context import carried, scope
from dspex.capture.dspy_bridge import ensure_callback
from dspex.journal import ExperimentJournal
from dspex.store.memory import MemoryBackend

CALLS = 10_000
THREADS = 8


@pytest.mark.slow
def test_a_burst_from_many_threads_records_every_lm_call(lm, engine):
    ensure_callback(shared_callback())
    recorder = TrialRecorder(dspex.new_id("trl"))
    predict = dspy.Predict("question -> answer")
    with recording(recorder):
        overrides, values = thread_local_overrides.get(), scope()

        def adopt() -> None:  # DSPy's settings and dspex's context, as DSPy's threads get them
            thread_local_overrides.set(overrides)

        ask = carried(lambda i: predict(question=f"What is {i} + 1?").answer, values)
        with ThreadPoolExecutor(THREADS, initializer=adopt) as pool:
            answers = list(pool.map(ask, range(CALLS)))
    assert answers == [str(i + 1) for i in range(CALLS)]
    events = recorder.events()
    calls = [e for e in events if e.kind is EventKind.LM_CALL]
    assert engine.calls == CALLS and len(calls) == engine.calls
    assert [e.sequence for e in events] == list(range(len(events)))
    assert len({e.id for e in events}) == len(events)
    assert all(e.trial_id == recorder.trial_id for e in events)
    # every LM call sits in the Predict call that made it, on the same thread
    starts = {e.id: e for e in events if e.kind is EventKind.MODULE_START}
    assert len(starts) == CALLS
    assert all(e.parent_id in starts and starts[e.parent_id].worker == e.worker for e in calls)
    asked = {c.payload["messages"][-1]["content"].split("What is ")[1] for c in calls}
    assert len(asked) == CALLS  # each call's own messages, none lost or duplicated
    assert len({e.worker for e in calls}) == THREADS


class SlowBackend(MemoryBackend):
    """A store whose trial writes take half a second."""

    DELAY = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[float] = []

    def write_trial(self, experiment_id, trial):
        time.sleep(self.DELAY)
        super().write_trial(experiment_id, trial)
        self.writes.append(time.perf_counter())


def test_recording_never_waits_on_a_slow_store_and_finished_trials_are_durable():
    backend = SlowBackend()
    store = ResultStore(backend)
    journal = ExperimentJournal("slow store", store=store)
    journal.start()
    recorders = [journal.new_trial(name=f"t{i}") for i in range(3)]
    for recorder in recorders:
        for n in range(1000):
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": f"event {n}"})
    assert backend.writes == []  # recording touched no storage
    for count, recorder in enumerate(recorders, start=1):
        journal.finish_trial(recorder, score=1.0)
        assert len(backend.writes) == count  # written before finish_trial returned
        assert len(store.get_experiment(journal.id).trials) == count
    experiment = journal.finish()
    stored = store.get_experiment(experiment.id)
    assert [len(t.events) for t in stored.trials] == [1000, 1000, 1000]
