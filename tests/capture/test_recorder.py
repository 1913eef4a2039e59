"""The recorder builds events without validating them: they must be exactly what validation
would have built, and read back from JSON as equal records."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dspex
from dspex.capture import TrialRecorder
from dspex.model import EventKind, EventSource, TraceEvent

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
payloads = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        json_leaf,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=10,
    ),
    max_size=5,
)
kinds = st.sampled_from(["module_start", "lm_call", "decision", "example_result", "error", "log"])
sources = st.sampled_from(["execution", "orchestration", "evaluation"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(sources, kinds, payloads), min_size=1, max_size=6))
def test_recorded_events_equal_validated_ones_and_round_trip(emitted):
    recorder = TrialRecorder(dspex.new_id("trl"))
    previous = None
    for source, kind, payload in emitted:
        previous = recorder.emit(
            EventKind(kind), payload, parent_id=previous, source=EventSource(source)
        )
    for event in recorder.events():
        validated = TraceEvent(**dict(event))
        assert validated == event and validated.to_json() == event.to_json()
        assert TraceEvent.from_json(event.to_json()) == event


def test_an_event_comes_from_its_kinds_source_unless_its_producer_says_otherwise():
    recorder = TrialRecorder(dspex.new_id("trl"))
    error = {"type": "builtins.ValueError", "message": "bad", "traceback": ""}
    recorder.emit(EventKind.ERROR, error)
    recorder.emit(EventKind.ERROR, error, source=EventSource.EVALUATION)
    recorder.emit(
        EventKind.TRIAL_SCORE, {"score": 1.0, "metric": "m", "n": 1, "failures": 0, "scope": "dev"}
    )
    assert [(e.source, e.kind) for e in recorder.events()] == [
        (EventSource.ORCHESTRATION, EventKind.ERROR),
        (EventSource.EVALUATION, EventKind.ERROR),
        (EventSource.EVALUATION, EventKind.TRIAL_SCORE),
    ]


def test_a_thread_without_a_name_still_records_a_readable_worker():
    recorder = TrialRecorder(dspex.new_id("trl"))
    thread = threading.Thread(
        target=lambda: recorder.emit(EventKind.LOG, {"level": "INFO", "message": ""})
    )
    thread.name = ""  # possible, and a worker must be a non-empty name to read back
    thread.start()
    thread.join()
    (event,) = recorder.events()
    assert TraceEvent.from_json(event.to_json()).worker == "thread"


def test_an_unknown_kind_is_refused_when_the_trial_is_built():
    recorder = TrialRecorder(dspex.new_id("trl"))
    recorder.emit("lm_cal", {})  # type: ignore[call-overload]
    with pytest.raises(KeyError, match="lm_cal"):
        recorder.events()
