"""``dspex study run|ls|show|export``, and a study stopped with Ctrl-C, then resumed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dspex import ResultStore
from dspex.cli import main
from dspex.model.study import AttemptOutcome, CellStatus, StudyStatus
from dspex.study.cell import study_tag
from tests.study.conftest import spec_data, toml_text
from tests.study.lms import ENV, LATENCY, calls_answered

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "160"})
    assert result.exit_code == code, result.output
    return result.output


def _two_arms(name: str, seeds: tuple[int, ...] = (0, 1), **run_options) -> dict:
    data = spec_data(name=name, seeds=seeds)
    data["arms"] = {"rs": data["arms"]["rs"], "mipro": data["arms"]["mipro"]}
    if run_options:
        data["run"] = run_options
    return data


def test_run_ls_show_and_export_a_study(tmp_path, study_dir):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    spec = tmp_path / "study.toml"
    spec.write_text(toml_text(_two_arms("cli-study", engine="inline")))
    out = run("study", "run", str(spec), "--store", url)
    assert "study cli-study: completed, 4 of 4 cells sealed" in out
    assert "verdict: " in out and "details: dspex study show cli-study --store" in out
    listed = run("study", "ls", "--store", url).splitlines()
    assert listed[0].split()[:4] == ["NAME", "STATUS", "SEALED", "FAILED"]
    assert listed[1].split()[:4] == ["cli-study", "completed", "4/4", "0"]
    shown = run("study", "show", "cli-study", "--store", url)
    for part in (
        "Hypothesis: MIPROv2 beats",
        "Arms (score across seeds)",
        "mipro vs rs",
        "Cells (arm x seed",
        "CI: two-way bootstrap over seeds and examples",
    ):
        assert part in shown, part
    record = ResultStore.open(url).get_study("cli-study")
    for fmt in ("csv", "jsonl", "parquet"):
        out = run("study", "export", "cli-study", "--store", url, "--format", fmt,
                  "--output", str(tmp_path / "out"))  # fmt: skip
        assert f"cli-study.cells.{fmt}" in out
    with (tmp_path / "out" / "cli-study.cells.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {r["experiment_id"] for r in rows} == {
        c.experiment_id for c in record.cells
    }
    assert {(r["arm"], r["seed"]) for r in rows} == {(c.arm, str(c.seed)) for c in record.cells}
    lines = (tmp_path / "out" / "cli-study.cells.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["sealed"] * 4
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_parquet(tmp_path / "out" / "cli-study.cells.parquet")
    assert len(frame) == 4 and "lm_calls" in frame.columns


def test_a_spec_with_errors_lists_them_all_and_runs_nothing(tmp_path, study_dir):
    data = _two_arms("bad")
    data["seeds"] = [0, "x"]
    data["arms"]["rs"]["options"]["num_candidate_program"] = 2
    spec = tmp_path / "study.toml"
    spec.write_text(toml_text(data))
    out = run("study", "run", str(spec), "--store", f"sqlite:///{tmp_path / 's.db'}", code=1)
    assert "has 2 errors" in out and "seeds[1] (line 7): 'x' is not an integer" in out
    assert "did you mean 'num_candidate_programs'" in out
    assert not (tmp_path / "s.db").exists() and calls_answered(study_dir) == 0


def test_show_and_export_name_a_missing_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ResultStore.open(url).connect().close()
    assert "no study named 'nope'" in run("study", "show", "nope", "--store", url, code=1)
    assert "no study named 'nope'" in run("study", "export", "nope", "--store", url, code=1)
    assert "no studies in" in run("study", "ls", "--store", url)


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_ctrl_c_stops_a_local_study_cleanly(tmp_path, study_dir):
    """Cells in worker processes: one is killed (SIGKILL) and its cell retried; then SIGINT
    to `dspex study run` once a cell is sealed; then the same command resumes."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    spec = tmp_path / "study.toml"
    spec.write_text(toml_text(_two_arms("stopped", seeds=(0, 1), max_concurrent=2)))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        ENV: str(study_dir),
        LATENCY: "0.02",
    }
    command = [sys.executable, "-m", "dspex", "study", "run", str(spec), "--store", url]
    driver = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    store = ResultStore.open(url)
    (study_dir / "kill-once").touch()  # the first LM call in a worker waits to be killed
    try:
        _wait((study_dir / "victim").exists, driver, 240)
        time.sleep(0.2)
        os.kill(int((study_dir / "victim").read_text()), signal.SIGKILL)
        _wait(lambda: _sealed(store, "stopped") >= 1, driver, 240)
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, out + err
    assert "interrupted:" in err and "run the same command again to resume" in err
    stopped = store.get_study("stopped")
    assert stopped.status is StudyStatus.INTERRUPTED and stopped.owner is None
    crashed = [a for c in stopped.cells for a in c.attempts if a.outcome.value == "crashed"]
    assert len(crashed) == 1 and "was killed by signal SIGKILL" in crashed[0].cause
    assert crashed[0].pid == int((study_dir / "victim").read_text())
    assert all(c.status is not CellStatus.RUNNING for c in stopped.cells)
    cut = [c for c in stopped.cells if c.status is CellStatus.INTERRUPTED and c.attempts]
    assert cut and all(c.attempts[-1].outcome is AttemptOutcome.INTERRUPTED for c in cut)
    assert all("Ctrl-C" in c.attempts[-1].cause for c in cut)
    sealed_before = {c.key: c.experiment_id for c in stopped.cells if c.result}
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    final = store.get_study("stopped")
    assert final.status is StudyStatus.COMPLETED and len(final.cells) == 4
    assert all(final.cell(*k).experiment_id == e for k, e in sealed_before.items())
    tagged = store.query_experiments(tags=[study_tag("stopped")])
    assert sorted(s.id for s in tagged) == sorted(c.experiment_id for c in final.cells)
    assert all(s.status.value == "completed" for s in tagged)
    for cell in cut:  # the interrupted attempt's experiment was replaced, not duplicated
        resumed = final.cell(*cell.key)
        assert resumed.attempts[-1].experiment_id == cell.attempts[-1].experiment_id


def _sealed(store: ResultStore, name: str) -> int:
    try:
        record = store.get_study(name)
    except Exception:  # noqa: BLE001 - not created yet
        return 0
    return sum(1 for c in record.cells if c.status is CellStatus.SEALED)


def _wait(condition, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the study ended first ({process.returncode}): {out}{err}")
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the study")
