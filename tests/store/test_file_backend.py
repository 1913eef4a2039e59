"""What only the file backend does: its layout, damage detection and reindex."""

from __future__ import annotations

import os

import pytest

from dspex import CorruptRecordError, ResultStore
from tests.store.test_conformance import make_experiment


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
