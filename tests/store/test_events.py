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


def test_a_large_parse_leaves_its_objects_old_without_a_collection_and_keeps_frozen_ones():
    """After a large trial is parsed, collection is on again and the young generation is
    nearly empty (the objects built were moved to the oldest one, not walked by a
    collection); a process's own frozen objects stay frozen."""
    import gc

    data, _, index = trial_json(_trial(12_000))
    assert len(data) > 1 << 20  # large enough for the quick path
    gc.collect()
    collections: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(note)
    try:
        trial = parse_trial(data, index)
        kept = [[k] for k in range(500)]  # what the next allocations would collect
    finally:
        gc.callbacks.remove(note)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert collections == []  # the ~100,000 objects just built were not walked
    assert len(trial.events) == 12_000 and len(kept) == 500
    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        assert len(parse_trial(data, index).events) == 12_000
        # neither unfrozen (about 0) nor the ~100,000 new objects frozen; frozen objects
        # that other threads free meanwhile leave the count (as the full suite's do)
        assert gc.isenabled() and frozen - 5_000 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(("count", "chunk"), [(0, 1), (7, 3), (2 * PART_EVENTS + 7, 100)])
def test_a_record_written_from_unjoined_pieces_is_the_record_written_from_joined_json(
    tmp_path, count, chunk
):
    """The file store writes a trial sealed from its appended parts as pieces, never
    joined: the record file (body, digests of each trial, part and header, footer) is
    byte for byte the one written from the joined JSON."""
    from dspex import Experiment, ProgramInfo
    from dspex.store._events import Pieces, digest_of, digests
    from dspex.store._filerecord import write_record
    from dspex.store.codec import encode

    exp_id = new_id("exp")
    trial, other = (_trial(n).model_copy(update={"experiment_id": exp_id}) for n in (count, 3))
    bare = trial.model_copy(update={"events": ()})
    experiment = Experiment(id=exp_id, name="e", program=ProgramInfo(name="qa"),
                            status="completed",
                            trials=(bare, other.model_copy(update={"index": 1})))  # fmt: skip
    parts = []
    for first in range(0, count, chunk):
        parts += plan_append(first, first, trial.events[first : first + chunk], "t")
    appended = {bare.id: parts} if parts else {}
    joined = encode(experiment, appended=appended)
    pieces = encode(experiment, appended=appended, joined=False)
    assert joined.checksum == pieces.checksum and b"".join(pieces.chunks()) == joined.body
    assert any(isinstance(data, Pieces) for _, data in pieces.trials) == bool(parts)
    write_record(tmp_path / "joined", joined)
    write_record(tmp_path / "pieces", pieces)
    assert (tmp_path / "pieces").read_bytes() == (tmp_path / "joined").read_bytes()
    data = joined.trials[0][1]
    ranges = [(0, 5), (5, 5), (9, len(data) // 2), (len(data) - 3, len(data))]
    split = Pieces(tuple(data[k : k + 7] for k in range(0, len(data), 7)), len(data))
    assert digests(split, ranges) == digests(data, ranges)
    assert digest_of(split, ranges) == digest_of(data, ranges)
