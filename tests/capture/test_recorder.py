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


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))  # up to the year 2100
def test_event_times_are_the_utc_microsecond_below_the_clocks_nanoseconds(time_ns):
    from datetime import UTC, datetime

    from dspex.capture.recorder import utc_time

    seconds, nanos = divmod(time_ns, 1_000_000_000)
    expected = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)
    assert utc_time(time_ns) == expected
    assert utc_time(time_ns).isoformat() == expected.isoformat()


def test_events_are_ordered_by_time_then_clock_then_id():
    from dspex.capture.recorder import RawEvent, trace_events

    def raw(event_id: str, time_ns: int, monotonic_ns: int) -> RawEvent:
        return RawEvent(event_id, time_ns, monotonic_ns, None, "log", {}, None, 1, "main")

    events = [raw("evt_c", 5, 1), raw("evt_b", 5, 1), raw("evt_a", 7, 0), raw("evt_d", 5, 0)]
    ordered = trace_events(dspex.new_id("trl"), events)
    assert [e.id for e in ordered] == ["evt_d", "evt_b", "evt_c", "evt_a"]
    assert [e.sequence for e in ordered] == [0, 1, 2, 3]


results = st.fixed_dictionaries(
    {
        "index": st.integers(min_value=-1, max_value=5),
        "inputs": payloads,
        "labels": payloads,
        "prediction": st.none() | payloads,
        "metrics": st.dictionaries(
            st.text(max_size=5), st.floats() | st.integers() | st.booleans(), max_size=2
        ),
        "latency_ms": st.none() | st.floats() | st.integers(min_value=-2, max_value=5),
        "tokens": st.integers(min_value=-1, max_value=10) | st.booleans(),
        "cost": st.none() | st.floats() | st.integers(min_value=-1, max_value=3),
        "error": st.none()
        | st.builds(dspex.ErrorInfo, type=st.just("builtins.ValueError"), message=st.text()),
        "worker": st.none() | st.text(max_size=8),
    }
)


@settings(max_examples=300, deadline=None)
@given(results)
def test_example_results_built_without_validation_equal_validated_ones(fields):
    """Scoring builds results without validating JSON it made itself: each one must be the
    validated record, and any field that is not exactly valid goes through validation."""
    from dspex.model import ExampleResult
    from dspex.model.trial import trusted_example_result

    try:
        expected = ExampleResult(**fields)
    except dspex.ValidationError as error:
        with pytest.raises(dspex.ValidationError) as raised:
            trusted_example_result(**fields)
        assert str(raised.value) == str(error)
        return
    built = trusted_example_result(**fields)
    assert built == expected
    assert built.to_json() == expected.to_json()
    assert built.model_fields_set == expected.model_fields_set
    read_back = ExampleResult.from_json(built.to_json())  # nan != nan: compared as JSON
    assert read_back.to_json() == ExampleResult.from_json(expected.to_json()).to_json()


def test_a_due_flush_is_called_once_by_the_next_event_recorded_or_merged():
    import time

    recorder = TrialRecorder(dspex.new_id("trl"))
    calls: list[int] = []

    def flush() -> None:
        calls.append(len(recorder.raw_events()))
        recorder.flush_due_at(time.monotonic_ns() + 3_600 * 10**9)

    recorder.flush_when_due(flush, time.monotonic_ns() + 3_600 * 10**9)
    recorder.emit(EventKind.LOG, {"level": "INFO", "message": "not due"})
    assert calls == []
    recorder.flush_due_at(0)
    recorder.emit(EventKind.LOG, {"level": "INFO", "message": "due"})
    recorder.emit(EventKind.LOG, {"level": "INFO", "message": "not due again"})
    assert calls == [2]
    other = TrialRecorder(dspex.new_id("trl"))
    other.emit(EventKind.LOG, {"level": "INFO", "message": "elsewhere"})
    recorder.flush_due_at(0)
    recorder.merge(other.raw_events())
    assert calls == [2, 4]
    recorder.flush_when_due(None)
    recorder.flush_due_at(0)  # no flush any more: nothing is due
    recorder.emit(EventKind.LOG, {"level": "INFO", "message": "after"})
    assert calls == [2, 4]


def test_a_failing_flush_does_not_fail_the_event(caplog):
    import time

    recorder = TrialRecorder(dspex.new_id("trl"))

    def flush() -> None:
        raise OSError("disk gone")

    recorder.flush_when_due(flush, 0)
    with caplog.at_level("WARNING", logger="dspex.capture.recorder"):
        first = recorder.emit(EventKind.LOG, {"level": "INFO", "message": "kept"})
        second = recorder.emit(EventKind.LOG, {"level": "INFO", "message": "kept too"})
    assert [e.id for e in recorder.raw_events()] == [first, second]
    warned = [r for r in caplog.records if "from the recording thread failed" in r.message]
    assert len(warned) == 1  # tried again a second later, not on every event
    assert recorder.flush_due_ns > time.monotonic_ns() + 500_000_000


def test_a_flush_is_due_after_so_many_events_before_its_time():
    import time

    recorder = TrialRecorder(dspex.new_id("trl"))
    later = time.monotonic_ns() + 3_600 * 10**9
    calls: list[int] = []

    def flush() -> None:
        calls.append(len(recorder))
        recorder.release(len(recorder))  # what the spool does with a released trial
        recorder.flush_due_at(later)

    recorder.flush_when_due(flush, later, events=3)
    for i in range(7):
        recorder.emit(EventKind.LOG, {"level": "INFO", "message": str(i)})
    assert calls == [3, 6]
    assert len(recorder.raw_events()) == 1
    recorder.flush_when_due(None)
    for i in range(5):
        recorder.emit(EventKind.LOG, {"level": "INFO", "message": str(i)})
    assert calls == [3, 6]


def test_a_flush_due_by_count_that_fails_is_tried_again_after_as_many_events(caplog):
    import time

    recorder = TrialRecorder(dspex.new_id("trl"))
    tries: list[int] = []

    def flush() -> None:
        tries.append(len(recorder))
        raise OSError("disk gone")

    recorder.flush_when_due(flush, time.monotonic_ns() + 3_600 * 10**9, events=4)
    with caplog.at_level("WARNING", logger="dspex.capture.recorder"):
        for i in range(10):
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": str(i)})
    assert tries == [4, 8]  # not once per event after the first failure
    assert len(recorder.raw_events()) == 10  # nothing lost
