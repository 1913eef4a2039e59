"""The spool's file format: whole records back, a torn tail dropped, a failed write cut."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import zlib

import pytest

import dspex
from dspex.capture.recorder import TrialRecorder
from dspex.ids import new_id
from dspex.journal.spool import (
    COMPRESS_MIN,
    MAGIC,
    RecordType,
    SpoolError,
    SpoolFile,
    decode_events,
    decode_part,
    encode_events,
    encode_part,
    read_records,
)
from dspex.model import EventKind
from dspex.store import EventPart


def _file_with_three(path):
    with SpoolFile(path) as f:
        f.append(RecordType.TRIAL_OPEN, {"id": "a"})
        f.append(RecordType.TRIAL_OPEN, {"id": "b", "text": "x" * 1000})
        f.append(RecordType.TRIAL_END, {"id": "c"})
    return path.read_bytes()


def test_records_come_back_whole_and_in_order(tmp_path):
    path = tmp_path / "t.spool"
    data = _file_with_three(path)
    assert data.startswith(MAGIC)
    read = read_records(path)
    assert [r.body["id"] for r in read.records] == ["a", "b", "c"]
    assert not read.torn


@pytest.mark.parametrize("cut", [1, 5, 9, 200, 900])
def test_a_torn_tail_is_dropped_and_counted(tmp_path, cut):
    path = tmp_path / "t.spool"
    data = _file_with_three(path)
    # the process died while writing the second record: the third never came
    second_end = len(data) - len(b'{"id":"c"}') - 9
    path.write_bytes(data[: second_end - cut])
    read = read_records(path)
    assert [r.body["id"] for r in read.records] == ["a"]
    assert read.torn and read.dropped_bytes > 0


def test_a_damaged_record_ends_what_is_read(tmp_path):
    path = tmp_path / "t.spool"
    data = bytearray(_file_with_three(path))
    data[len(MAGIC) + 9 + 12 + 20] ^= 0xFF  # a byte in the second record's body
    path.write_bytes(bytes(data))
    read = read_records(path)
    assert [r.body["id"] for r in read.records] == ["a"]
    assert read.torn


def test_events_round_trip_with_their_payloads(tmp_path):
    recorder = TrialRecorder(new_id("trl"))
    first = recorder.emit(EventKind.LOG, {"level": "INFO", "message": "héllo \x00"})
    recorder.emit(EventKind.LOG, {"level": "INFO", "message": "two"}, parent_id=first)
    back = decode_events(encode_events(recorder.raw_events()))
    assert [(e.id, e.parent_id, e.payload["message"]) for e in back] == [
        (first, None, "héllo \x00"),
        (back[1].id, first, "two"),
    ]
    assert [e._replace(json_ready=False) for e in back] == recorder.raw_events()


def test_a_write_past_the_file_size_limit_leaves_the_file_readable(tmp_path):
    """RLIMIT_FSIZE (a full disk for this process): the failed record is cut back out, the
    error is a SpoolError, and the records before it stay whole."""
    path = tmp_path / "t.spool"
    script = textwrap.dedent(
        f"""
        import resource
        from dspex.journal.spool import RecordType, SpoolError, SpoolFile
        f = SpoolFile({str(path)!r})
        f.append(RecordType.TRIAL_OPEN, {{"id": "small"}})
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            f.append(RecordType.TRIAL_OPEN, {{"id": "big", "text": "x" * 10000}})
        except SpoolError as exc:
            print("SpoolError", exc)
        f.append(RecordType.TRIAL_END, {{"id": "after"}})
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "SpoolError" in out.stdout and "File too large" in out.stdout
    assert [r.body["id"] for r in read_records(path).records] == ["small", "after"]
    assert os.path.getsize(path) < 4096


def test_an_unwritable_spool_is_a_spool_error_naming_the_file(tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        if os.geteuid() == 0:
            target = tmp_path / "not-a-dir" / "x.spool"
            (tmp_path / "not-a-dir").write_text("")
        else:
            target = tmp_path / "ro" / "x.spool"
        with pytest.raises(SpoolError, match=str(target)):
            SpoolFile(target)
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_small_batches_are_plain_json_and_large_ones_compressed():
    """A batch under COMPRESS_MIN bytes is written as its JSON (compressing a few events
    costs more CPU than it saves disk); a larger one is zlib-compressed; both, and batches
    written compressed by earlier versions, read back the same."""
    recorder = TrialRecorder(new_id("trl"))
    recorder.emit(EventKind.LOG, {"level": "INFO", "message": "short"})
    small = recorder.raw_events()
    for i in range(40):
        recorder.emit(EventKind.LOG, {"level": "INFO", "message": f"line {i} " + "x" * 200})
    large = recorder.raw_events()
    plain, packed = encode_events(small), encode_events(large)
    assert plain.startswith(b"[") and len(plain) < COMPRESS_MIN
    assert zlib.decompress(packed).startswith(b"[")
    assert len(packed) < len(zlib.decompress(packed)) >= COMPRESS_MIN
    assert [e._replace(json_ready=False) for e in decode_events(plain)] == small
    assert [e._replace(json_ready=False) for e in decode_events(packed)] == large
    written_before = zlib.compress(plain, 1)  # every batch was compressed before
    assert decode_events(written_before) == decode_events(plain)


def test_the_trial_exp_evaluate_returns_is_the_one_the_store_holds(tmp_path, spool_dir):
    """An evaluation's events come back from the recorder's memory rather than being
    read back from the spool: they must equal, event for event, what the store got from
    the spool (payloads made JSON data there, a tuple becoming a list)."""
    import dspy

    from dspex.store import ResultStore

    class Tagged(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qa = dspy.Predict("question -> answer")

        def forward(self, question: str, tags: tuple[str, ...]) -> dspy.Prediction:
            return self.qa(question=question)

    devset = [
        dspy.Example(
            question=f"What is {i} + 1?", tags=("a", str(i)), answer=str(i + 1)
        ).with_inputs("question", "tags")
        for i in range(4)
    ]
    store = ResultStore.open(f"file://{tmp_path / 'store'}")
    with dspy.context(lm=dspex.offline_lm()), dspex.experiment("same", store=store) as exp:
        returned = exp.evaluate(Tagged(), devset, lambda e, p, t=None: e.answer == p.answer)
    stored = store.get_trial(exp.experiment.id, returned.id)
    assert len(returned.events) > 8
    starts = [e.payload for e in returned.events if e.kind == "module_start"]
    tags = sorted(p["inputs"]["tags"] for p in starts if "tags" in p["inputs"])
    assert tags == [["a", str(i)] for i in range(4)], starts  # JSON data: lists, any order
    assert [e.to_dict() for e in returned.events] == [e.to_dict() for e in stored.events]


def test_spooled_parts_are_the_events_numbered_and_serialized_as_the_store_keeps_them(
    tmp_path,
):
    """The spool holds each batch as the store's parts (numbered from where the trial got
    to, serialized once): the store is given those bytes, and they read back as the
    events the recorder made, in the numbering a whole read gives."""
    from dspex.journal.writer import ExperimentSpool
    from dspex.model import Experiment, ProgramInfo
    from dspex.store import encode_parts

    experiment = Experiment(name="e", program=ProgramInfo(name="p"), status="running")
    spool = ExperimentSpool.create(tmp_path, experiment, "memory://", flush_interval=60)
    recorder = TrialRecorder(new_id("trl"))
    spool.open_trial(recorder, {"id": recorder.trial_id}, release=False)
    for i in range(3):
        recorder.emit(EventKind.LOG, {"level": "INFO", "message": f"first {i}"})
    spool.flush()
    for i in range(700):  # a batch of more than one stored part
        recorder.emit(EventKind.LOG, {"level": "INFO", "message": f"second {i} " + "y" * 50})
    spool.flush()
    parts = [part for part, _ in spool.parts_from(recorder.trial_id)]
    assert [(p.first, p.count) for p in parts] == [(0, 3), (3, 500), (503, 200)]
    events = recorder.events()
    assert parts == encode_parts(0, events[:3]) + encode_parts(3, events[3:])
    assert spool.trial_events(recorder.trial_id) == events
    records = read_records(spool.trial_path(recorder.trial_id)).records
    assert [r.type for r in records].count(RecordType.EVENT_PART) == 3
    last = decode_part(records[-1].body)
    assert last.summary is not None and last.summary.events == 200
    assert records[-1].body.endswith(last.data)  # its JSON as it is (a small spool)
    spool.close()


def test_a_spool_past_its_plain_budget_compresses_the_parts_after(tmp_path, monkeypatch):
    """Parts go uncompressed until the experiment's spool holds PLAIN_SPOOL_BYTES, then
    compressed; all of them read back as the recorder's events."""
    from dspex.journal import writer
    from dspex.model import Experiment, ProgramInfo

    monkeypatch.setattr(writer, "PLAIN_SPOOL_BYTES", 50_000)
    experiment = Experiment(name="e", program=ProgramInfo(name="p"), status="running")
    spool = writer.ExperimentSpool.create(tmp_path, experiment, "memory://", flush_interval=60)
    recorder = TrialRecorder(new_id("trl"))
    spool.open_trial(recorder, {"id": recorder.trial_id}, release=False)
    for batch in range(6):
        for i in range(200):
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": f"{batch} {i} " + "y" * 60})
        spool.flush()
    bodies = [
        r.body
        for r in read_records(spool.trial_path(recorder.trial_id)).records
        if r.type is RecordType.EVENT_PART
    ]
    plain = [body.endswith(decode_part(body).data) for body in bodies]
    before = [sum(map(len, bodies[:k])) for k in range(len(bodies))]
    assert plain == [written < 50_000 for written in before]
    assert plain[0] and not plain[-1]
    compressed = [body for body, as_is in zip(bodies, plain, strict=True) if not as_is]
    assert all(len(body) < len(decode_part(body).data) for body in compressed)
    assert spool.trial_events(recorder.trial_id) == recorder.events()
    spool.close()


def test_a_part_round_trips_plain_or_compressed():
    small = EventPart(5, 1, b'{"id":"evt_1","x":1}')
    large = EventPart(0, 2, b'{"id":"evt_2"}' + b"," + b'{"p":"' + b"z" * COMPRESS_MIN + b'"}')
    assert encode_part(small).endswith(small.data)  # under COMPRESS_MIN: as it is
    assert len(encode_part(large)) < len(large.data)
    assert decode_part(encode_part(small)) == small
    assert decode_part(encode_part(large)) == large


def test_a_streamed_trial_is_sealed_without_its_events_parsed_again(
    tmp_path, spool_dir, monkeypatch
):
    """The parts the spool hands the store carry their summaries: sealing a trial of
    direct calls summarizes it from them, without reading its events back."""
    import dspy

    from dspex.store import EventPart, ResultStore, _summaries
    from tests.capture.conftest import AdditionEngine, addition_lm

    def parsed(*_: object) -> None:
        raise AssertionError("the store parsed the streamed events to summarize them")

    monkeypatch.setattr(_summaries, "summarize_raw", parsed)
    monkeypatch.setattr(EventPart, "events", parsed)
    store = ResultStore.open(f"file://{tmp_path / 'store'}")
    program = dspy.Predict("question -> answer")
    engine = AdditionEngine()  # an LM this test wrote, counting what it answers
    with dspy.context(lm=addition_lm(engine)), dspex.experiment("calls", store=store) as exp:
        for i in range(30):
            program(question=f"What is {i} + 1?")
    (trial,) = store.get_experiment(exp.experiment.id, events=False).trials
    assert trial.event_summary is not None
    assert engine.calls == 30 and trial.event_summary.lm_calls == engine.calls
    assert trial.event_summary.events == store.count_events(exp.experiment.id, trial.id) > 30


def test_the_recording_thread_writes_the_spool_when_the_flusher_is_late(tmp_path, monkeypatch):
    """A flusher thread kept from running (as one waiting for the GIL can be, for seconds,
    behind a thread that runs Python and lets the GIL go for a moment, again and again):
    the first event recorded once a flush is due writes the trial's events, in the thread
    that records it, before emit returns."""
    import threading
    import time

    from dspex.journal import writer
    from dspex.model import Experiment, ProgramInfo

    held = threading.Event()
    kept_from_running = threading.Event()

    def late_flusher(self):
        held.set()
        kept_from_running.wait(30)
        return 60.0

    monkeypatch.setattr(writer.ExperimentSpool, "_flush_late", late_flusher)
    experiment = Experiment(name="e", program=ProgramInfo(name="p"), status="running")
    spool = writer.ExperimentSpool.create(tmp_path, experiment, "memory://", flush_interval=0.05)
    try:
        recorder = TrialRecorder(new_id("trl"))
        spool.open_trial(recorder, {"id": recorder.trial_id}, release=True)
        for i in range(3):
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": f"before {i}"})
        assert held.wait(10)  # the flusher is stuck
        assert list(spool.parts_from(recorder.trial_id)) == []  # not due yet: nothing written
        time.sleep(0.06)
        recorder.emit(EventKind.LOG, {"level": "INFO", "message": "due"})
        written = spool.trial_events(recorder.trial_id)
        assert [e.payload["message"] for e in written] == [f"before {i}" for i in range(3)] + [
            "due"
        ]
        assert recorder.raw_events() == []  # released: they left memory
        recorder.emit(EventKind.LOG, {"level": "INFO", "message": "next"})  # not due again
        assert len(spool.trial_events(recorder.trial_id)) == 4
        assert recorder.flush_due_ns > time.monotonic_ns()
    finally:
        kept_from_running.set()
        spool.close()


def test_a_trial_past_its_backlog_is_written_at_once_whatever_the_interval(tmp_path):
    """A released trial that records more than BACKLOG_LIMIT events within one (long)
    flush interval: the event past the bound writes them, in the thread that records, at
    once. It used to wait two seconds for the flusher, then drop the bound and grow."""
    from dspex.journal import writer
    from dspex.model import Experiment, ProgramInfo

    experiment = Experiment(name="e", program=ProgramInfo(name="p"), status="running")
    spool = writer.ExperimentSpool.create(tmp_path, experiment, "memory://", flush_interval=60)
    try:
        recorder = TrialRecorder(new_id("trl"))
        spool.open_trial(recorder, {"id": recorder.trial_id}, release=True)
        for i in range(3 * writer.BACKLOG_LIMIT):
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": str(i)})
            assert len(recorder.raw_events()) <= writer.BACKLOG_LIMIT
        # a wait that gave up (the flusher writes once a minute here) drops the bound
        assert recorder._backlog_limit == writer.BACKLOG_LIMIT
        written = spool.trial_events(recorder.trial_id)
        assert len(written) + len(recorder.raw_events()) == 3 * writer.BACKLOG_LIMIT
        assert [e.payload["message"] for e in written] == [str(i) for i in range(len(written))]
    finally:
        spool.close()


def test_a_released_trial_holds_at_most_flush_events_whatever_the_interval(tmp_path):
    """Events held until the next write (a tenth of a second: hundreds of fast calls) kept
    the garbage collector busy walking DSPy's history (see writer.FLUSH_EVENTS): a released
    trial is written once it holds FLUSH_EVENTS events; a trial whose events are kept (read
    back while it runs, or built for its end) waits for the interval."""
    from dspex.journal import writer
    from dspex.model import Experiment, ProgramInfo

    experiment = Experiment(name="e", program=ProgramInfo(name="p"), status="running")
    spool = writer.ExperimentSpool.create(tmp_path, experiment, "memory://", flush_interval=60)
    try:
        released, kept = TrialRecorder(new_id("trl")), TrialRecorder(new_id("trl"))
        built = TrialRecorder(new_id("trl"))
        spool.open_trial(released, {"id": released.trial_id}, release=True)
        spool.open_trial(kept, {"id": kept.trial_id}, release=False)
        spool.open_trial(built, {"id": built.trial_id}, release=True, keep_built=True)
        most = 0
        for i in range(5 * writer.FLUSH_EVENTS + 3):
            released.emit(EventKind.LOG, {"level": "INFO", "message": str(i)})
            kept.emit(EventKind.LOG, {"level": "INFO", "message": str(i)})
            built.emit(EventKind.LOG, {"level": "INFO", "message": str(i)})
            most = max(most, len(released.raw_events()))
        assert most == writer.FLUSH_EVENTS - 1
        written = spool.trial_events(released.trial_id)
        assert len(written) == 5 * writer.FLUSH_EVENTS
        assert [e.payload["message"] for e in written] == [str(i) for i in range(len(written))]
        for waiting in (kept, built):
            assert len(waiting.raw_events()) == 5 * writer.FLUSH_EVENTS + 3  # not written yet
    finally:
        spool.close()


def test_an_ended_trials_last_write_is_sent_from_memory_as_the_file_holds_it(tmp_path, monkeypatch):
    """The journal sends an ended trial's events to the store from the spool: the parts
    of its last write come from memory (not read back and checked again), equal to what
    the file holds; once the store has the trial, they are read from the file."""
    from dspex.journal import spool as spool_module
    from dspex.journal import writer
    from dspex.model import Experiment, ProgramInfo

    decoded = []
    real_decode = spool_module.decode_part
    monkeypatch.setattr(writer, "decode_part", lambda body: decoded.append(1) or real_decode(body))
    monkeypatch.setattr(writer, "FLUSH_EVENTS", 10_000)  # the writes made here only
    experiment = Experiment(name="e", program=ProgramInfo(name="p"), status="running")
    spool = writer.ExperimentSpool.create(tmp_path, experiment, "memory://", flush_interval=60)
    try:
        recorder = TrialRecorder(new_id("trl"))
        spool.open_trial(recorder, {"id": recorder.trial_id}, release=True)
        for i in range(700):  # two parts in the first write
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": str(i)})
        spool.flush()
        for i in range(700, 1300):  # two more in the last
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": str(i)})
        spool.end_trial(recorder, {"id": recorder.trial_id})
        from_file = [
            (real_decode(r.body), r.end)
            for r in spool_module.iter_records(spool.trial_path(recorder.trial_id))
            if r.type is RecordType.EVENT_PART
        ]
        assert [(p.first, p.count) for p, _ in from_file] == [
            (0, 500),
            (500, 200),
            (700, 500),
            (1200, 100),
        ]
        assert list(spool.parts_from(recorder.trial_id)) == from_file
        assert len(decoded) == 2  # the first write's parts only
        assert list(spool.parts_from(recorder.trial_id, from_file[2][1])) == from_file[3:]
        assert len(decoded) == 2
        spool.mark_stored(recorder.trial_id)
        assert list(spool.parts_from(recorder.trial_id)) == from_file
        assert len(decoded) == 6  # read back from the file, all four
    finally:
        spool.close()


def test_a_released_trial_whose_built_events_are_kept_holds_them_once(tmp_path):
    """An evaluation's trial (``release=True, keep_built=True``): its recorder drops each
    event once spooled, and the events as built for the spool come back at its end: the
    same records a recorder that kept everything would give, held once, not twice."""
    from dspex.journal.writer import ExperimentSpool
    from dspex.model import Experiment, ProgramInfo

    experiment = Experiment(name="e", program=ProgramInfo(name="p"), status="running")
    spool = ExperimentSpool.create(tmp_path, experiment, "memory://", flush_interval=60)
    recorder = TrialRecorder(new_id("trl"))
    twin = TrialRecorder(recorder.trial_id)  # the same events, never released
    spool.open_trial(recorder, {"id": recorder.trial_id}, release=True, keep_built=True)
    for batch in range(3):
        for i in range(4):
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": f"{batch}.{i}"})
        twin.merge(recorder.raw_events())
        spool.flush()
        assert recorder.raw_events() == []  # spooled: gone from the recorder
    spool.end_trial(recorder, {"id": recorder.trial_id})
    kept = spool.take_events(recorder.trial_id)
    assert kept == twin.events() == spool.trial_events(recorder.trial_id)
    assert spool.take_events(recorder.trial_id) is None  # given once
    spool.close()


def test_a_write_that_hangs_does_not_stop_the_thread_that_records(tmp_path):
    """Another thread's write of the trial hangs (a stalled disk, here its lock held): a
    thread that records once a write is due waits WRITE_WAIT at most, records on, and
    does not wait again before a second has passed."""
    import time

    from dspex.journal import writer
    from dspex.model import Experiment, ProgramInfo

    experiment = Experiment(name="e", program=ProgramInfo(name="p"), status="running")
    spool = writer.ExperimentSpool.create(tmp_path, experiment, "memory://", flush_interval=60)
    recorder = TrialRecorder(new_id("trl"))
    spool.open_trial(recorder, {"id": recorder.trial_id}, release=True)
    spooled = spool._open[recorder.trial_id]
    try:
        with spooled.lock:  # the write under way, never ending
            recorder.flush_due_at(0)
            started = time.monotonic()
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": "due"})
            waited = time.monotonic() - started
            started = time.monotonic()
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": "right after"})
            again = time.monotonic() - started
        assert writer.WRITE_WAIT * 0.9 <= waited < writer.WRITE_WAIT + 2, waited
        assert again < writer.WRITE_WAIT * 0.5, again  # not due again yet
        assert len(recorder.raw_events()) == 2  # kept, for the next write
        assert recorder.flush_due_ns > time.monotonic_ns()
    finally:
        spool.close()
    assert [e.payload["message"] for e in spool.trial_events(recorder.trial_id)] == [
        "due",
        "right after",
    ]


def test_a_thread_that_records_gives_the_flusher_the_gil_after_its_own_write(tmp_path, give_ways):
    """A thread that records as fast as it can writes its trial itself when a write is
    due, and then waits for the flusher's round (due on the same schedule) instead of
    keeping the GIL from it (benchmarks/bench_flusher.py measures what that costs)."""
    from dspex.journal import writer
    from dspex.model import Experiment, ProgramInfo

    experiment = Experiment(name="e", program=ProgramInfo(name="p"), status="running")
    spool = writer.ExperimentSpool.create(tmp_path, experiment, "memory://", flush_interval=0.02)
    try:
        recorder = TrialRecorder(new_id("trl"))
        spool.open_trial(recorder, {"id": recorder.trial_id}, release=True)
        deadline = time.monotonic() + 0.5
        emitted = 0
        while time.monotonic() < deadline:
            recorder.emit(EventKind.LOG, {"level": "INFO", "message": str(emitted)})
            emitted += 1
        assert any(give_ways)  # about 25 writes, each followed by a give-way
        spool.flush()  # a round of the flusher may be writing a batch just now
        written = spool.trial_events(recorder.trial_id)
        assert len(written) + len(recorder.raw_events()) == emitted
    finally:
        spool.close()
