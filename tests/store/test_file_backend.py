"""What only the file backend does: its layout, damage detection and reindex."""

from __future__ import annotations

import fcntl
import os

import pytest
from click.testing import CliRunner

from dspex import CorruptRecordError, ResultStore, StoreUnavailable, new_id
from dspex.cli import main
from dspex.store import file as file_module
from dspex.store.file import FileBackend
from tests.store.test_conformance import make_experiment, make_trial


@pytest.fixture
def root(tmp_path):
    return tmp_path / "results"


def _open(root) -> ResultStore:
    return ResultStore.open(f"file://{root}").connect()


def _record_path(root, experiment_id):
    [path] = root.glob(f"experiments/*/*/*/{experiment_id}/record.dspex")
    return path


def test_layout_is_dated_directories_of_records(root):
    store = _open(root)
    experiment = make_experiment()
    store.archive_experiment(experiment)
    path = _record_path(root, experiment.id)
    assert path.read_bytes().startswith(experiment.to_json_bytes())
    assert (root / "index.sqlite").exists()
    assert not list(path.parent.glob(".*"))  # no temp files left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_record_is_reported_by_id_and_the_rest_still_reads(root, damage):
    store = _open(root)
    good, bad = make_experiment(), make_experiment(trials=3)
    store.archive_experiment(good)
    store.archive_experiment(bad)
    path = _record_path(root, bad.id)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        at = data.index(b'"name":"demo"') + 9
        data[at] ^= 0x01
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match=bad.id):
        store.get_experiment(bad.id)
    assert store.get_experiment(good.id) == good
    assert {s.id for s in store.query_experiments()} == {good.id, bad.id}
    assert [p.record_id for p in store.verify()] == [bad.id]
    problems = store.backend.reindex()
    assert [p.record_id for p in problems] == ([] if damage == "flip" else [bad.id])
    assert good.id in {s.id for s in store.query_experiments()}


def test_reindex_rebuilds_a_lost_index(root):
    store = _open(root)
    made = [make_experiment() for _ in range(3)]
    for experiment in made:
        store.archive_experiment(experiment)
    running = make_experiment(status="running", trials=0)
    store.start_experiment(running)
    store.close()
    os.remove(root / "index.sqlite")
    reopened = _open(root)
    assert reopened.count_experiments() == 4
    assert reopened.count_experiments(status="running") == 1
    assert reopened.backend.reindex() == []
    assert reopened.get_experiment(made[0].id) == made[0]


def test_an_interrupted_index_update_is_replayed_on_open(root):
    store = _open(root)
    experiment = make_experiment()
    store.archive_experiment(experiment)
    # As if a writer died between publishing the record and updating the index.
    with store.backend._index.writing() as conn:
        store.backend._index.remove(conn, experiment.id)
    (root / "pending" / experiment.id).touch()
    store.close()
    assert _open(root).query_experiments()[0].id == experiment.id
    assert not list((root / "pending").iterdir())


def test_relative_or_remote_file_urls_are_refused():
    from dspex import ValidationError

    for url in ("file://relative/dir", "file://host/abs"):
        with pytest.raises(ValidationError, match="absolute directory"):
            ResultStore.open(url)


# -- the index is derived data: any state of it is repaired from the records ----------------


def _many(store, count: int) -> list:
    made = [make_experiment(trials=1) for _ in range(count)]
    for experiment in made:
        store.archive_experiment(experiment)
    return made


def test_an_index_rebuild_that_fails_leaves_no_valid_looking_empty_index(root, monkeypatch):
    made = _many(_open(root), 30)
    (root / "index.sqlite").unlink()
    calls = {"n": 0}
    real = FileBackend._summary

    def failing(self, experiment_id):
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("disk went away")
        return real(self, experiment_id)

    monkeypatch.setattr(FileBackend, "_summary", failing)
    with pytest.raises(StoreUnavailable, match="disk went away"):
        _open(root)
    monkeypatch.setattr(FileBackend, "_summary", real)
    assert _open(root).count_experiments() == len(made)


def test_an_index_rebuild_killed_halfway_is_done_again(root):
    made = _many(_open(root), 40)
    (root / "index.sqlite").unlink()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: dies like SIGKILL in the middle of the rebuild
        real = FileBackend._summary
        calls = {"n": 0}

        def dying(self, experiment_id):
            calls["n"] += 1
            if calls["n"] == 25:
                os._exit(9)
            return real(self, experiment_id)

        FileBackend._summary = dying
        try:
            _open(root)
        finally:
            os._exit(1)
    assert os.waitpid(pid, 0)[1] >> 8 == 9
    assert _open(root).count_experiments() == len(made)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_index_is_rebuilt_and_reindex_repairs_it(root, damage):
    store = _open(root)
    made = _many(store, 12)
    store.close()
    index = root / "index.sqlite"
    if damage == "garbage":
        index.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        index.write_bytes(index.read_bytes()[:1500])
    else:
        index.write_bytes(b"")
    reader = ResultStore.open(f"file://{root}", read_only=True)
    assert reader.count_experiments() == len(made)  # read-only: rebuilt in memory
    reader.close()
    assert _open(root).count_experiments() == len(made)
    index.write_bytes(b"garbage again" * 100)
    assert "12 experiments" in _cli("store", "reindex", "--store", f"file://{root}")
    assert _open(root).count_experiments() == len(made)


def test_an_index_deleted_while_a_store_is_open_is_rebuilt_with_what_came_after(root):
    live = _open(root)
    before = _many(live, 3)
    (root / "index.sqlite").unlink()
    after = _many(live, 2)  # the live writer must not write into the deleted file
    other = _open(root)
    assert {s.id for s in other.query_experiments()} == {e.id for e in before + after}
    assert live.count_experiments() == 5


def test_readers_do_not_wait_for_the_writers_lock_and_writers_say_why_they_fail(root, monkeypatch):
    store = _open(root)
    experiment = _many(store, 1)[0]
    store.close()
    holder = os.open(root / ".lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process reindexing, say
    try:
        reader = _open(root)  # opens without waiting: the index is usable
        assert reader.get_experiment(experiment.id) == experiment
        assert reader.count_experiments() == 1
        monkeypatch.setattr(file_module, "LOCK_TIMEOUT", 0.2)
        with pytest.raises(StoreUnavailable, match=r"locked by another process.*\.lock"):
            reader.archive_experiment(make_experiment())
    finally:
        os.close(holder)
    reader.archive_experiment(make_experiment())
    assert reader.count_experiments() == 2


# -- damaged records ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["body length", "footer length"])
def test_a_non_digit_in_the_trailer_is_a_damaged_record_and_the_rest_reads(root, where):
    store = _open(root)
    good, bad = make_experiment(), make_experiment(trials=2)
    store.archive_experiment(good)
    store.archive_experiment(bad)
    path = _record_path(root, bad.id)
    data = bytearray(path.read_bytes())
    trailer = data.rindex(b"dspex-record v1 ")
    at = trailer + len(b"dspex-record v1 ") + (5 if where == "body length" else 26)
    data[at] = ord("x")
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match=bad.id):
        store.get_experiment(bad.id)
    with pytest.raises(CorruptRecordError, match=bad.id):
        store.get_trial(bad.id, bad.trials[0].id)
    assert [p.record_id for p in store.verify()] == [bad.id]
    assert [p.record_id for p in store.backend.reindex()] == [bad.id]
    store.close()
    (root / "index.sqlite").unlink()
    reopened = _open(root)  # the whole store still opens without its index
    assert [s.id for s in reopened.query_experiments()] == [good.id]
    assert reopened.get_experiment(good.id) == good


def test_a_running_file_holding_another_experiment_is_damage_not_that_experiment(root):
    store = _open(root)
    mine = make_experiment(status="running", trials=0)
    other = make_experiment(status="running", trials=0, name="other")
    store.start_experiment(mine)
    store.start_experiment(other)
    [running] = root.glob(f"experiments/*/*/*/{mine.id}/running.json")
    [others] = root.glob(f"experiments/*/*/*/{other.id}/running.json")
    running.write_bytes(others.read_bytes())
    with pytest.raises(CorruptRecordError, match=f"{mine.id}.*holds experiment '{other.id}'"):
        store.get_experiment(mine.id)
    assert [p.record_id for p in store.backend.reindex()] == [mine.id]
    trial = make_trial(other.id, 0, 0.5)
    store.record_trial(other.id, trial)
    [folder] = root.glob(f"experiments/*/*/*/{other.id}")  # a trial file of older versions
    (folder / "trials" / f"{new_id('trl')}.json").write_bytes(trial.to_json_bytes())
    store.close()  # (a store lists those once per experiment: this version writes none)
    with pytest.raises(CorruptRecordError, match="holds trial"):
        _open(root).get_experiment(other.id)


def test_a_reader_never_sees_part_of_an_experiment_that_is_being_sealed(root, monkeypatch):
    store = _open(root)
    final = make_experiment(trials=3)
    store.start_experiment(final.replace(status="running", trials=(), best_trial_id=None))
    for trial in final.trials:
        store.record_trial(final.id, trial)
    real = FileBackend._running_trials

    def sealed_meanwhile(self, folder, record):
        yield next(real(self, folder, record))  # one trial read, then the seal lands
        monkeypatch.setattr(FileBackend, "_running_trials", real)
        _open(root).archive_experiment(final)
        yield from real(self, folder, record)

    monkeypatch.setattr(FileBackend, "_running_trials", sealed_meanwhile)
    assert store.get_experiment(final.id) == final


def test_what_killed_writers_leave_behind_is_removed(root):
    store = _open(root)
    experiment = make_experiment()
    store.archive_experiment(experiment)
    store.close()
    dead = _dead_pid()
    folder = _record_path(root, experiment.id).parent
    leftovers = [
        root / "tmp" / f".{experiment.id}.{dead}.1.staged",
        root / "tmp" / f".running.json.{dead}.2.tmp",
        folder / f".record.{dead}.3.staged",  # where earlier versions staged records
        folder / f".record.dspex.{dead}.4.tmp",
    ]
    alive = root / "tmp" / f".running.json.{os.getpid()}.5.tmp"
    for path in [*leftovers, alive]:
        path.write_bytes(b"x" * 1000)
    _open(root)
    assert not leftovers[0].exists() and not leftovers[1].exists()
    assert alive.exists()
    _open(root).backend.reindex()
    assert not any(p.exists() for p in leftovers) and alive.exists()
    assert _open(root).get_experiment(experiment.id) == experiment


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_page_of_events_reads_only_its_parts_and_a_damaged_part_is_named(root, monkeypatch):
    from dspex.store import _filerecord
    from dspex.store._events import PART_EVENTS

    store = _open(root)
    experiment = make_experiment(trials=0)
    trial = make_trial(experiment.id, 0, 0.5, events=10 * PART_EVENTS)
    experiment = experiment.replace(trials=(trial,))
    store.archive_experiment(experiment)
    path = _record_path(root, experiment.id)
    size = path.stat().st_size
    read: list[int] = []
    original = _filerecord.RecordFile._read

    def counting(self, start, end):
        read.append(end - start)
        return original(self, start, end)

    monkeypatch.setattr(_filerecord.RecordFile, "_read", counting)
    page = store.read_events(experiment.id, trial.id, offset=3 * PART_EVENTS + 5, limit=20)
    assert page == list(trial.events[3 * PART_EVENTS + 5 : 3 * PART_EVENTS + 25])
    assert 0 < sum(read) < size / 8  # one part of ten, not the trial
    read.clear()
    assert store.get_trial(experiment.id, trial.id, events=False) == trial.replace(events=())
    assert sum(read) < size / 100
    # one byte changed in the fifth part: that part is refused, the others still read
    data = bytearray(path.read_bytes())
    at = data.index(trial.events[4 * PART_EVENTS + 7].id.encode())
    data[at + 5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match=experiment.id):
        store.read_events(experiment.id, trial.id, offset=4 * PART_EVENTS, limit=10)
    assert store.read_events(experiment.id, trial.id, limit=3) == list(trial.events[:3])
    assert [p.record_id for p in store.verify()] == [experiment.id]


def test_a_torn_or_damaged_trial_log_loses_only_the_unacknowledged_frame(root):
    """A crash mid-append leaves a torn last frame: readers stop before it, the next write
    cuts it off. A changed byte in a frame is a CorruptRecordError naming the experiment."""
    store = _open(root)
    experiment = make_experiment(status="running", trials=0)
    store.start_experiment(experiment)
    trials = [make_trial(experiment.id, i, 0.5, events=3) for i in range(3)]
    for trial in trials[:2]:
        store.record_trial(experiment.id, trial)
    [log] = root.glob(f"experiments/*/*/*/{experiment.id}/trials.log")
    whole = log.read_bytes()
    log.write_bytes(whole + whole[: len(whole) // 3])  # a torn third frame
    fresh = _open(root)
    assert fresh.get_experiment(experiment.id).trials == tuple(trials[:2])
    fresh.record_trial(experiment.id, trials[2])
    assert _open(root).get_experiment(experiment.id).trials == tuple(trials)
    assert [s.trial_count for s in _open(root).query_experiments()] == [3]
    data = bytearray(log.read_bytes())
    data[len(data) - 20] ^= 1  # inside the last trial's JSON
    log.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match=experiment.id):
        _open(root).get_trial(experiment.id, trials[2].id)
    assert _open(root).get_trial(experiment.id, trials[0].id) == trials[0]


def test_threads_recording_at_once_share_flushes_and_every_trial_is_kept(root, monkeypatch):
    """Group commit: one flush serves several writers, yet each record_trial returns
    only once its own trial is within what a flush made durable; the index counts every
    trial though writers update it together."""
    import threading
    import time

    store = _open(root)
    experiment = make_experiment(status="running", trials=0)
    store.start_experiment(experiment)
    trials = [make_trial(experiment.id, i, 0.5, events=2) for i in range(64)]
    [log] = root.glob(f"experiments/*/*/*/{experiment.id}")
    log = log / "trials.log"
    durable = [0]  # the log's size when the last flush began: durable once it ends
    lock = threading.Lock()
    flushes = []
    real = os.fdatasync

    def counted(fd):
        size = os.fstat(fd).st_size
        time.sleep(0.005)  # a disk's flush: writers pile up meanwhile
        real(fd)
        with lock:
            flushes.append(fd)
            durable[0] = max(durable[0], size)

    def record(part):
        for trial in part:
            store.record_trial(experiment.id, trial)
            with lock:
                flushed = log.read_bytes()[: durable[0]]
            assert trial.id.encode() in flushed, "record_trial returned before its flush"

    monkeypatch.setattr(os, "fdatasync", counted)
    workers = [threading.Thread(target=record, args=(trials[k::8],)) for k in range(8)]
    errors = []
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        threading.excepthook = threading.__excepthook__
    assert errors == []
    assert sorted(_open(root).get_experiment(experiment.id).trials, key=lambda t: t.index) == trials
    assert 0 < len(flushes) < len(trials)
    assert [s.trial_count for s in store.query_experiments()] == [len(trials)]
    assert [s.trial_count for s in _open(root).query_experiments()] == [len(trials)]


def test_a_torn_events_log_keeps_every_acknowledged_append(root):
    store = _open(root)
    experiment = make_experiment(status="running", trials=0)
    store.start_experiment(experiment)
    trial = make_trial(experiment.id, 0, 0.5, events=30)
    store.append_events(experiment.id, trial.id, 0, trial.events[:10])
    [log] = root.glob(f"experiments/*/*/*/{experiment.id}/trials/{trial.id}.events")
    whole = log.read_bytes()
    log.write_bytes(whole + whole[: len(whole) // 2])  # a crash mid-append
    assert store.count_events(experiment.id, trial.id) == 10
    store.append_events(experiment.id, trial.id, 5, trial.events[5:])  # overlapping replay
    assert store.read_events(experiment.id, trial.id) == list(trial.events)
    data = bytearray(log.read_bytes())
    data[-10] ^= 1
    log.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match=experiment.id):
        store.read_events(experiment.id, trial.id, offset=25)


def test_trials_of_older_versions_beside_the_trial_log_are_counted_once(root):
    """A running experiment continued by this version: trial files of older versions
    (``trials/<id>.json``) and logged trials are read and counted once each, also when
    a trial is in both; the count stays right as trials are added."""
    store = _open(root)
    experiment = make_experiment(status="running", trials=0)
    store.start_experiment(experiment)
    trials = [make_trial(experiment.id, i, 0.5, events=2) for i in range(4)]
    [folder] = root.glob(f"experiments/*/*/*/{experiment.id}")
    for trial in trials[:2]:  # as older versions wrote them
        (folder / "trials" / f"{trial.id}.json").write_bytes(trial.to_json_bytes())
    store.close()
    store = _open(root)
    store.record_trial(experiment.id, trials[1])  # logged too
    assert [s.trial_count for s in store.query_experiments()] == [2]
    for count, trial in enumerate(trials[2:], start=3):
        store.record_trial(experiment.id, trial)
        assert [s.trial_count for s in store.query_experiments()] == [count]
    assert store.get_experiment(experiment.id).trials == tuple(trials)
    assert [s.trial_count for s in _open(root).query_experiments()] == [4]


# -- how a trial is checked -----------------------------------------------------------------


def _experiment_with_long_trials():
    from dspex.store import PART_EVENTS

    experiment = make_experiment(trials=0)
    trials = tuple(make_trial(experiment.id, i, 0.5, events=PART_EVENTS * 2 + 7) for i in range(2))
    return experiment.replace(trials=trials)


def _footer(path):
    import json
    import re

    data = path.read_bytes()
    body_length, footer_length = map(
        int, re.search(rb"dspex-record v1 ([0-9]{20}) ([0-9]{20})", data).groups()
    )
    return json.loads(data[body_length : body_length + footer_length]), data


def _flip_in_an_event(root, experiment, position):
    """Flip one bit inside an event of the second trial's ``position``-th part."""
    path = _record_path(root, experiment.id)
    footer, data = _footer(path)
    entry = footer["events"][1]
    starts = entry[4]
    at = starts[position] + data[starts[position] :].index(b'"worker":"') + 11
    damaged = bytearray(data)
    damaged[at] ^= 0x01
    path.write_bytes(bytes(damaged))


def test_a_trial_with_indexed_events_is_checked_by_its_header_and_a_crc_of_each_part(root):
    store = _open(root)
    experiment = _experiment_with_long_trials()
    store.archive_experiment(experiment)
    footer, _ = _footer(_record_path(root, experiment.id))
    assert [t[3] for t in footer["trials"]] == ["", ""]  # no SHA-256 of the whole trial
    assert all(len(d) == 8 for entry in footer["events"] for d in entry[5])  # CRC-32s
    assert all(len(entry[6]) == 64 for entry in footer["events"])  # the header's SHA-256
    trial = experiment.trials[1]
    assert store.get_trial(experiment.id, trial.id) == trial
    _flip_in_an_event(root, experiment, 1)  # the second part of the second trial
    with pytest.raises(CorruptRecordError, match="does not match its checksum"):
        store.get_trial(experiment.id, trial.id)
    with pytest.raises(CorruptRecordError, match="does not match its checksum"):
        store.read_events(experiment.id, trial.id, offset=600, limit=10)
    # a page in an undamaged part still reads, and so does the other trial
    assert store.read_events(experiment.id, trial.id, offset=0, limit=10) == list(trial.events[:10])
    first = experiment.trials[0]
    assert store.get_trial(experiment.id, first.id) == first
    assert [p.record_id for p in store.verify()] == [experiment.id]


def test_records_written_with_sha256_digests_of_each_trial_and_part_still_read(root, monkeypatch):
    """Records written before 2026-12-06 hold a SHA-256 of each trial and of each part."""
    from dspex.store import _filerecord
    from dspex.store._events import digest_of, digests

    def trial_digests(record):
        return [digests(data, [(0, len(data))])[0].hex() for _, data in record.trials]

    def event_entry(data, index, start):
        bounds = [index.part_bounds(k) for k in range(len(index.starts))]
        parts = [digest.hex() for digest in digests(data, bounds)]
        header = digest_of(data, [(0, index.at), (index.end, len(data))]).hex()
        return [*index.shifted(start).to_list(), parts, header]

    store = _open(root)
    experiment = _experiment_with_long_trials()
    with monkeypatch.context() as patch:
        patch.setattr(_filerecord, "_trial_digests", trial_digests)
        patch.setattr(_filerecord, "_event_entry", event_entry)
        store.archive_experiment(experiment)
    footer, _ = _footer(_record_path(root, experiment.id))
    assert all(len(t[3]) == 64 for t in footer["trials"])
    assert all(len(d) == 64 for entry in footer["events"] for d in entry[5])
    trial = experiment.trials[1]
    assert store.get_experiment(experiment.id) == experiment
    assert store.get_trial(experiment.id, trial.id) == trial
    assert store.read_events(experiment.id, trial.id, offset=600, limit=10) == list(
        trial.events[600:610]
    )
    _flip_in_an_event(root, experiment, 1)
    with pytest.raises(CorruptRecordError, match="does not match its checksum"):
        store.get_trial(experiment.id, trial.id)
    with pytest.raises(CorruptRecordError, match="does not match its checksum"):
        store.read_events(experiment.id, trial.id, offset=600, limit=10)
