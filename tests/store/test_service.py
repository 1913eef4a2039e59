"""The service: opening from settings, the shared default, cheap construction."""

from __future__ import annotations

import pytest

import dspex
from dspex import ResultStore, StoreUnavailable
from dspex.store.file import FileBackend
from dspex.store.memory import MemoryBackend
from dspex.store.sql import SqlBackend
from tests.store.test_conformance import make_experiment


def test_open_without_a_url_uses_the_settings(tmp_path):
    assert isinstance(ResultStore.open().backend, MemoryBackend)
    dspex.configure(store={"backend": "file", "path": str(tmp_path / "results")})
    store = ResultStore.open()
    assert store.url == f"file://{tmp_path / 'results'}"
    assert not (tmp_path / "results").exists()  # opening does no I/O
    assert isinstance(store.backend, FileBackend) and (tmp_path / "results").is_dir()


def test_relative_file_paths_are_taken_from_the_current_directory(tmp_path):
    dspex.configure(store={"backend": "file", "path": "here"})
    assert ResultStore.open().url == f"file://{tmp_path / 'here'}"


def test_sql_settings_and_auto_migrate(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    dspex.configure(store={"backend": "sql", "url": url, "auto_migrate": False})
    with pytest.raises(StoreUnavailable, match="dspex store migrate"):
        ResultStore.open().connect()
    dspex.configure(store={"auto_migrate": True})
    store = ResultStore.open()
    assert isinstance(store.backend, SqlBackend)
    store.archive_experiment(experiment := make_experiment())
    assert store.get_experiment(experiment.id) == experiment


def test_default_is_one_shared_instance_until_reset(tmp_path):
    dspex.configure(store={"backend": "file", "path": str(tmp_path / "shared")})
    first = ResultStore.default()
    assert ResultStore.default() is first
    first.archive_experiment(experiment := make_experiment())
    ResultStore.reset_default()
    second = ResultStore.default()
    assert second is not first and second.get_experiment(experiment.id) == experiment


def test_an_unknown_scheme_lists_the_valid_ones():
    with pytest.raises(StoreUnavailable) as caught:
        ResultStore.open("mongodb://u:pw@host/db")
    message = str(caught.value)
    assert "pw" not in message
    for scheme in ("file://", "memory://", "postgresql://", "sqlite://"):
        assert scheme in message


def test_context_manager_connects_and_closes(tmp_path):
    with ResultStore.open(f"file://{tmp_path / 's'}") as store:
        store.archive_experiment(make_experiment())
        assert store.count_experiments() == 1


def test_a_plain_directory_is_a_file_store(tmp_path):
    store = ResultStore.open(str(tmp_path / "results")).connect()
    assert store.url == (tmp_path / "results").as_uri()
    store.archive_experiment(experiment := make_experiment())
    again = ResultStore.open("results", read_only=True).connect()  # relative: the cwd's
    assert again.get_experiment(experiment.id) == experiment
