"""`dspex --help`, `dspex config show` and `dspex config check`, in-process and as a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import dspex
from dspex.cli import main


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def test_help_lists_every_command_family():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("config", "demo", "experiments", "store", "ui"):
        assert f"  {command} " in result.output


def test_show_prints_every_setting_with_its_source(tmp_path):
    (tmp_path / "dspex.toml").write_text("[workers]\npool_size = 3\n")
    result = run("config", "show", env={"DSPEX_STORE_BACKEND": "file"})
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[3:]}
    assert set(lines) == set(dspex.config.setting_keys())
    assert lines["workers.pool_size"].split()[1] == "3"
    assert lines["workers.pool_size"].endswith("dspex.toml [workers]")
    assert lines["store.backend"].endswith("environment DSPEX_STORE_BACKEND")
    assert lines["ui.port"].endswith("default")
    assert f"config file: {tmp_path / 'dspex.toml'}" in result.output


def test_show_json_and_masked_token():
    result = run("config", "show", "--json", env={"DSPEX_UI_TOKEN": "s3cret"})
    rows = {row["key"]: row for row in json.loads(result.output)}
    assert rows["ui.token"]["value"] == "********"
    assert "s3cret" not in result.output


def test_check_passes_on_a_valid_configuration(tmp_path):
    (tmp_path / "dspex.toml").write_text('[store]\nbackend = "file"\n')
    result = run("config", "check")
    assert result.exit_code == 0
    assert "configuration is valid" in result.output


def test_check_names_file_key_and_closest_setting_and_exits_1(tmp_path):
    path = tmp_path / "dspex.toml"
    path.write_text("[workers]\npool_sise = 4\n")
    result = run("config", "check")
    assert result.exit_code == 1
    assert str(path) in result.output
    assert "'workers.pool_sise'" in result.output
    assert "did you mean 'workers.pool_size'" in result.output


def test_check_rejects_a_bad_environment_value_and_warns_of_unknown_variables():
    bad = run("config", "check", env={"DSPEX_WORKERS_ADAPTER": "fork"})
    assert bad.exit_code == 1
    assert "DSPEX_WORKERS_ADAPTER" in bad.output and "thread | process | ray" in bad.output
    typo = run("config", "check", env={"DSPEX_STORE_BAKEND": "file"})
    assert typo.exit_code == 1  # a typo is an error, not a warning next to "valid"
    assert "environment DSPEX_STORE_BAKEND: names no dspex setting; did you mean " \
        "DSPEX_STORE_BACKEND?" in typo.output  # fmt: skip
    assert "configuration is valid" not in typo.output


def test_check_reports_every_problem_at_once(tmp_path):
    path = tmp_path / "dspex.toml"
    path.write_text('[workers]\npool_sise = 4\n[store]\nbakend = "file"\n[ui]\nport = "x"\n')
    environ = {"DSPEX_STORE_BAKEND": "file", "DSPEX_WORKERS_ADAPTER": "f"}
    result = run("config", "check", env=environ)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 5, result.output
    assert "did you mean 'workers.pool_size'" in errors[0]
    assert "did you mean 'store.backend'" in errors[1]
    assert "did you mean DSPEX_STORE_BACKEND" in result.output
    assert "DSPEX_WORKERS_ADAPTER" in result.output and "ui.port = 'x'" in result.output
    assert "5 problems" in result.output
    # No line lists the whole schema (17 keys on one line).
    assert all(line.count("workers.") < 3 for line in result.output.splitlines())


def test_show_names_the_store_every_front_end_uses(tmp_path, monkeypatch):
    result = run("config", "show")  # the tests run under DSPEX_ENV=test
    assert "store:       memory://default (memory: nothing outlives a process" in result.output
    monkeypatch.delenv("DSPEX_ENV")
    result = run("config", "show")
    assert f"store:       file://{tmp_path / 'dspex_results'}" in result.output
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = run("config", "show", env={"DSPEX_STORE_BACKEND": "sql", "DSPEX_STORE_URL": url})
    assert f"store:       {url}" in result.output


def test_python_dash_m_dspex_runs_config_check(tmp_path):
    (tmp_path / "dspex.toml").write_text('[ui]\nport = "eighty"\n')
    src = str(Path(dspex.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "dspex", "config", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "ui.port = 'eighty'" in done.stderr
