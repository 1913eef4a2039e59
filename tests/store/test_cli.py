"""The store commands, on real stores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import dspex
from dspex import ResultStore
from dspex.cli import main
from dspex.store import migrate
from tests.store.test_conformance import make_experiment


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "140"})
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def file_url(tmp_path) -> str:
    return f"file://{tmp_path / 'store'}"


def test_ls_lists_experiments_with_filters(file_url):
    store = ResultStore.open(file_url).connect()
    qa = make_experiment(tags=("nightly",))
    rag = make_experiment(program=dspex.ProgramInfo(name="rag"), trials=0)
    store.archive_experiment(qa)
    store.archive_experiment(rag)
    out = run("experiments", "ls", "--store", file_url)
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "PROGRAM", "OPTIMIZER", "STATUS", "CREATED",
                                "TRIALS", "BEST", "ON", "VERDICT"]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == [rag.id, qa.id]
    out = run("experiments", "ls", "--store", file_url, "--program", "qa", "--tag", "nightly",
              "--min-score", "0.2", "--order-by", "score", "--scope", qa.id)  # fmt: skip
    assert qa.id in out and rag.id not in out and "0.25" in out
    refused = run("experiments", "ls", "--store", file_url, "--order-by", "score", code=1)
    assert "comparable only over the same examples" in refused and "--scope <" in refused
    assert "no experiments match" in run("experiments", "ls", "--store", file_url, "--after",
                                         "2999-01-01")  # fmt: skip
    out = run("experiments", "ls", "--store", file_url, "--limit", "1")
    assert "more: --cursor" in out


def test_ls_names_a_bad_filter_value(file_url):
    ResultStore.open(file_url).connect().close()
    out = run("experiments", "ls", "--store", file_url, "--after", "someday", code=1)
    assert "--after" in out and "someday" in out


def test_show_prints_the_summary_and_trials(file_url):
    experiment = make_experiment(trials=3)
    ResultStore.open(file_url).connect().archive_experiment(experiment)
    out = run("experiments", "show", experiment.id, "--store", file_url)
    assert f"id:          {experiment.id}" in out
    assert "best score:  0.5" in out and "trials (3):" in out
    assert "scored on:   examples (n=1), scope key ex_" in out
    for trial in experiment.trials:
        assert trial.id in out
    missing = make_experiment().id
    assert missing in run("experiments", "show", missing, "--store", file_url, code=1)
    assert "not a dspex id" in run("experiments", "show", "../x", "--store", file_url, code=1)


def test_verify_lists_damaged_records_and_exits_1(file_url, tmp_path):
    store = ResultStore.open(file_url).connect()
    good, bad = make_experiment(), make_experiment()
    store.archive_experiment(good)
    store.archive_experiment(bad)
    assert "matches its checksum" in run("store", "verify", "--store", file_url)
    [path] = (tmp_path / "store").glob(f"experiments/*/*/*/{bad.id}/record.dspex")
    path.write_bytes(path.read_bytes()[:-10])
    out = run("store", "verify", "--store", file_url, code=1)
    assert f"damaged: {bad.id}" in out and good.id not in out


def test_reindex_rebuilds_the_index(file_url, tmp_path):
    store = ResultStore.open(file_url).connect()
    store.archive_experiment(make_experiment())
    store.close()
    (tmp_path / "store" / "index.sqlite").unlink()
    assert "1 experiments" in run("store", "reindex", "--store", file_url)
    assert "applies to file://" in run("store", "reindex", "--store", "memory://", code=1)


def test_migrate_brings_a_sqlite_store_to_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert f"to {migrate.head()}" in run("store", "migrate", "--store", url)
    assert "up to date" in run("store", "migrate", "--store", url)
    assert "applies to sql stores" in run("store", "migrate", "--store", "memory://", code=1)


def test_without_configuration_the_cli_uses_dspex_results_here(tmp_path, monkeypatch):
    monkeypatch.delenv("DSPEX_ENV")  # interactive use, not the tests' environment
    missing = run("experiments", "ls", code=1)
    assert f"no ResultStore at file://{tmp_path / 'dspex_results'}" in missing
    assert not (tmp_path / "dspex_results").exists()  # reading creates nothing
    experiment = make_experiment()
    ResultStore.open(f"file://{tmp_path / 'dspex_results'}").connect().archive_experiment(
        experiment
    )
    assert experiment.id in run("experiments", "ls")


def test_the_configured_store_is_used(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'conf.db'}"
    ResultStore.open(url).connect().archive_experiment(experiment := make_experiment())
    monkeypatch.setenv("DSPEX_STORE_BACKEND", "sql")
    monkeypatch.setenv("DSPEX_STORE_URL", url)
    dspex.config.reset()
    assert experiment.id in run("experiments", "ls")


def test_python_dash_m_dspex_runs_the_store_commands(file_url):
    experiment = make_experiment()
    ResultStore.open(file_url).connect().archive_experiment(experiment)
    src = str(Path(dspex.__file__).parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", "dspex", "experiments", "ls", "--store", file_url],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert experiment.id in done.stdout


def test_show_trial_prints_the_unified_timeline(file_url):
    experiment = make_experiment(trials=3)
    ResultStore.open(file_url).connect().archive_experiment(experiment)
    trial = experiment.trials[1]
    by_id = run("experiments", "show", experiment.id, "--trial", trial.id, "--store", file_url)
    by_index = run("experiments", "show", experiment.id, "--trial", "1", "--store", file_url)
    assert by_id == by_index
    assert f"Trial {trial.index} · " in by_id and trial.id in by_id
    full = run("experiments", "show", experiment.id, "--trial", "1", "--full", "--store", file_url)
    assert trial.id in full
    missing = run("experiments", "show", experiment.id, "--trial", "9", "--store", file_url, code=1)
    assert f"no trial #9 in experiment {experiment.id}: rows run 0–2" in missing


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize(
    "command",
    [
        ["experiments", "ls"],
        ["experiments", "show", "exp_01ARZ3NDEKTSV4RRFFQ69G5FAV"],
        ["store", "verify"],
    ],
)
def test_reading_commands_never_create_a_store(tmp_path, command, monkeypatch):
    monkeypatch.delenv("DSPEX_ENV")  # interactive use: the default is ./dspex_results
    for url in (f"file://{tmp_path / 'nonexistent' / 'x'}", f"sqlite:///{tmp_path / 'none.db'}"):
        out = run(*command, "--store", url, code=1)
        assert f"no ResultStore at {url}" in out
    assert list(tmp_path.iterdir()) == []
    out = run(*command, code=1)  # in an empty directory: the default ./dspex_results
    assert "dspex_results" in out and list(tmp_path.iterdir()) == []


def test_reading_commands_change_nothing_in_a_store(tmp_path):
    root = tmp_path / "store"
    url = f"file://{root}"
    experiment = make_experiment(trials=2)
    with ResultStore.open(url) as store:
        store.archive_experiment(experiment)
    before = _files(root)
    assert experiment.id in run("experiments", "ls", "--store", url)
    run("experiments", "show", experiment.id, "--store", url)
    run("experiments", "show", experiment.id, "--trial", "1", "--store", url)
    run("store", "verify", "--store", url)
    assert _files(root) == before  # no -wal, -shm or lock file left, nothing rewritten
    (root / ".lock").unlink()
    (root / "index.sqlite").unlink()  # a reader indexes in memory, and writes nothing
    assert experiment.id in run("experiments", "ls", "--store", url)
    assert not (root / ".lock").exists() and not (root / "index.sqlite").exists()
