""" "Not found" names the store searched and, when another known store holds the id, that one."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import dspex
from dspex import Experiment, ExperimentNotFound, ProgramInfo, ResultStore
from dspex.cli import main


def _sealed() -> Experiment:
    return Experiment(name="e", program=ProgramInfo(name="qa"), status="completed")


def test_python_names_the_store_and_the_one_holding_the_id(tmp_path, monkeypatch):
    # `make demo` wrote to ./dspex_results; a notebook under DSPEX_ENV=test looks in memory
    experiment = _sealed()
    ResultStore.open("dspex_results").connect().archive_experiment(experiment)
    with pytest.raises(ExperimentNotFound) as caught:
        dspex.TraceViewer.view_experiment(experiment.id)
    message = str(caught.value)
    assert "in memory://default" in message
    assert f"file://{tmp_path / 'dspex_results'} holds it" in message
    assert caught.value.found_in == (f"file://{tmp_path / 'dspex_results'}",)


def test_a_store_opened_in_this_process_is_named_too(tmp_path):
    elsewhere = ResultStore.open(f"file://{tmp_path / 'runs'}").connect()
    elsewhere.archive_experiment(experiment := _sealed())
    empty = ResultStore.open("memory://empty")
    with pytest.raises(ExperimentNotFound, match=f"file://{tmp_path / 'runs'} holds it"):
        empty.get_experiment(experiment.id)
    with pytest.raises(ExperimentNotFound) as caught:
        empty.get_experiment(dspex.new_id("exp"))  # nowhere: no store named but this one
    assert "in memory://empty" in str(caught.value) and "holds" not in str(caught.value)


def test_the_cli_and_python_default_to_the_same_store(tmp_path, monkeypatch):
    monkeypatch.delenv("DSPEX_ENV")  # interactive use: the file store ./dspex_results
    dspex.config.reset()
    ResultStore.reset_default()
    ResultStore.default().archive_experiment(experiment := _sealed())
    assert ResultStore.default().url == f"file://{tmp_path / 'dspex_results'}"
    listed = CliRunner().invoke(main, ["experiments", "ls"])
    assert listed.exit_code == 0 and experiment.id in listed.output
    from starlette.testclient import TestClient

    from dspex.cli._store import cli_store
    from dspex.view.web import create_app

    # `dspex ui` serves what cli_store opens: the same store
    with main.make_context("dspex", ["ui"]) as ctx, ctx:
        store = cli_store(None, read_only=True)
    client = TestClient(create_app(store), base_url="http://127.0.0.1")
    page = client.get(f"/experiments/{experiment.id}")
    assert page.status_code == 200


def test_the_cli_says_where_it_looked(tmp_path):
    ResultStore.open("elsewhere").connect().archive_experiment(experiment := _sealed())
    result = CliRunner().invoke(main, ["experiments", "show", experiment.id, "--store", "here"])
    assert result.exit_code == 1
    assert "no ResultStore at" in result.output or f"in file://{tmp_path / 'here'}" in result.output
    ResultStore.open("here").connect()  # an empty store
    result = CliRunner().invoke(main, ["experiments", "show", experiment.id, "--store", "here"])
    assert f"in file://{tmp_path / 'here'}" in result.output
