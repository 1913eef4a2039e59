"""Reading a trial's stored events: the quick path gives what validation would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dspex import TraceEvent, Trial, ValidationError, new_id
from dspex.store._events import (
    PART_EVENTS,
    parse_events,
    parse_trial,
    plan_append,
    trial_json,
    trial_with_parts,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


def _trial(count: int) -> Trial:
    trial_id = new_id("trl")
    events = tuple(
        TraceEvent(trial_id=trial_id, sequence=i, timestamp=START, monotonic_ns=i,
                   source="execution", kind="lm_call", pid=1, worker="w",
                   payload={"messages": [{"role": "user", "content": f"q{i}"}], "n": i})
        for i in range(count)
    )  # fmt: skip
    return Trial(id=trial_id, experiment_id=new_id("exp"), index=0, started_at=START,
                 events=events)  # fmt: skip


@pytest.mark.parametrize("count", [0, 1, PART_EVENTS + 1])
def test_a_trial_reads_back_from_its_bytes_and_from_a_view_inside_a_larger_buffer(count):
    trial = _trial(count)
    data, _, index = trial_json(trial)
    assert index is not None
    assert parse_trial(data, index) == trial
    # as the memory and file backends hold it: inside a record, read through a view
    record = b'{"trials":[' + data + b"]}"
    view = memoryview(record)[len(b'{"trials":[') : -len(b"]}")]
    assert parse_trial(view, index) == trial
    assert parse_trial(view, index, events=False) == trial.model_copy(update={"events": ()})


def _array(trial: Trial) -> bytes:
    data, _, index = trial_json(trial)
    assert index is not None
    return b"[" + data[index.at : index.end] + b"]"


def test_a_stored_timestamp_in_another_offset_reads_as_the_same_instant_in_utc():
    trial = _trial(1)
    array = _array(trial)
    shifted = array.replace(b'"timestamp":"2026-01-01T00:00:00Z"',
                            b'"timestamp":"2026-01-01T02:00:00+02:00"')  # fmt: skip
    assert shifted != array
    (event,) = parse_events(shifted, trial.id)
    assert event.timestamp == START and event.timestamp.tzinfo is UTC
    assert event == trial.events[0]


@pytest.mark.parametrize(
    ("stored", "replacement"),
    [
        (b'"timestamp":"2026-01-01T00:00:00Z"', b'"timestamp":"2026-01-01T00:00:00"'),
        (b'"kind":"lm_call"', b'"kind":"no_such_kind"'),
        (b'"worker":"w"', b'"workers":"w"'),
        (b'"payload":{', b'"payload":[{'),
    ],
)
def test_events_the_quick_path_cannot_take_are_validated_and_refused(stored, replacement):
    trial = _trial(1)
    array = _array(trial)
    assert parse_events(array, trial.id) == list(trial.events)
    bad = array.replace(stored, replacement, 1)
    if replacement.startswith(b'"payload":[{'):
        bad = bad.replace(b"}}", b"}]}", 1)
    assert bad != array
    with pytest.raises(ValidationError):
        parse_events(bad, trial.id)


def test_events_of_another_trial_are_refused():
    trial = _trial(2)
    with pytest.raises(ValidationError):
        parse_events(_array(trial), new_id("trl"))


@pytest.mark.parametrize(
    ("count", "chunk"), [(1, 1), (PART_EVENTS, 100), (2 * PART_EVENTS + 7, 100)]
)
def test_appended_parts_spliced_give_the_json_and_index_of_the_whole_trial(count, chunk):
    trial = _trial(count)
    parts = []
    for first in range(0, count, chunk):
        parts += plan_append(first, first, trial.events[first : first + chunk], "t")
    data, same, index = trial_with_parts(trial.model_copy(update={"events": ()}), parts)
    assert (data, index) == trial_json(trial)[::2]
    assert index is not None and index.count == count
    assert parse_trial(data, index) == trial
    assert same.events == ()
