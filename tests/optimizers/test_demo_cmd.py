"""``dspex demo`` end to end, in-process with click's CliRunner."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import dspex
from dspex import ExperimentStatus, ResultStore
from dspex.cli import main
from dspex.optimizers.gepa import MIN_GEPA, gepa_version


@pytest.fixture(autouse=True)
def _dspex_on_path(monkeypatch):
    # hints print `dspex` when the shell finds this one (tests/cli/test_hints_run.py
    # checks the other case, a path, from a shell without the virtualenv)
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ.get("PATH", ""))


def _demo(*args: str, width: int = 100):
    result = CliRunner().invoke(main, ["demo", "--steps", "2", *args], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result


def test_demo_runs_simba_and_prints_one_screen(tmp_path):
    url = f"file://{tmp_path / 'store'}"
    result = _demo("--store", url, width=80)
    out = result.stdout
    experiment_id = re.search(r"Experiment (exp_\w+) \(completed in ", out).group(1)
    archived = ResultStore.open(url).get_experiment(experiment_id)
    assert archived.status is ExperimentStatus.COMPLETED
    roles = [t.metadata.get("role") for t in archived.trials]
    assert roles[0] == "evaluation" and "compile" in roles and roles[-1] == "evaluation"
    baseline, final = archived.trials[0], archived.trials[-1]
    # baseline and optimized on the same dev set, never a minibatch, compared pairwise
    assert baseline.score_scope.name == "dev" and baseline.score_scope.n == 20
    assert baseline.score_scope.comparable_with(final.score_scope)
    assert f"baseline   {baseline.score:.3f} on dev (n=20)" in out
    assert f"optimized  {final.score:.3f} on dev (n=20)" in out
    assert "paired on 20 examples: " in out and "exact McNemar p=" in out
    # ...and the sealed record answers the hypothesis
    verdict = archived.hypothesis.verdict
    assert verdict is not None and archived.hypothesis.status.value == verdict.outcome.value
    assert (verdict.baseline_trial_id, verdict.final_trial_id) == (baseline.id, final.id)
    assert f"  verdict: {verdict.outcome.value}: " in out  # the stored verdict, with its test
    best = next(t for t in archived.trials if t.id == final.parent_trial_ids[0])
    assert f"{best.name}: " in out  # the decisions that made the best candidate
    assert "Returned: Return candidate" in out
    # One screen, not a 586-line timeline; the timeline is behind --verbose.
    lines = out.splitlines()
    assert len(lines) <= 40, out
    assert all(len(line) <= 80 for line in lines if not line.lstrip().startswith("dspex "))
    assert "── Orchestration" not in out
    assert result.stderr == ""  # no progress bar left behind when not on a terminal


def _hints(out: str) -> list[list[str]]:
    return [shlex.split(line.split("   #")[0]) for line in out.splitlines() if "  dspex " in line]


def _serves(argv: list[str], cwd: Path, experiment_id: str) -> None:
    """Run a printed `dspex ui ...` as printed (on a free port) and read the experiment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = str(Path(dspex.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSPEX_")}
    env.update(DSPEX_UI_PORT=str(port), PYTHONPATH=src)
    process = subprocess.Popen(
        [sys.executable, "-m", "dspex", *argv[1:]], cwd=cwd, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/experiments/{experiment_id}")
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert page.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_every_printed_hint_runs_as_printed(tmp_path):
    url = f"file://{tmp_path / 'store'}"
    out = _demo("--store", url).stdout
    experiment_id = re.search(r"Experiment (exp_\w+)", out).group(1)
    hints = _hints(out)
    assert [argv[1] for argv in hints] == ["experiments", "compare", "experiments", "ui"], out
    for argv in hints:
        assert argv[0] == "dspex" and argv[-2:] == ["--store", url]
        if argv[1] == "ui":
            _serves(argv, tmp_path, experiment_id)
            continue
        result = CliRunner().invoke(main, argv[1:])
        assert result.exit_code == 0, (argv, result.output)


def test_without_store_the_hints_need_none(tmp_path, monkeypatch):
    monkeypatch.delenv("DSPEX_ENV")  # interactive use: the default store is ./dspex_results
    out = _demo().stdout  # the current directory's ./dspex_results
    hints = _hints(out)
    assert hints and all("--store" not in argv for argv in hints)
    result = CliRunner().invoke(main, hints[2][1:])
    assert result.exit_code == 0 and " on " in result.output and "(n=" in result.output
    compared = CliRunner().invoke(main, hints[1][1:])
    assert compared.exit_code == 0 and "exact McNemar" in compared.output


def test_a_memory_store_prints_no_hint_that_cannot_work():
    out = _demo("--store", "memory://demo-test").stdout
    assert "dspex experiments show" not in out
    assert "memory://demo-test keeps records only while this command runs" in out


def test_verbose_adds_the_best_candidates_timeline():
    out = _demo("--store", "memory://demo-verbose", "--verbose").stdout
    assert "── Orchestration" in out and "Candidate created:" in out
    assert "Decision: Propose a new candidate from candidate" in out


def test_on_a_terminal_the_progress_bar_is_erased_when_the_run_ends(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 80, 0, 0))
    src = str(Path(dspex.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSPEX_")}
    env.update(PYTHONPATH=src, TERM="xterm-256color")
    env.pop("COLUMNS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dspex", "demo", "--steps", "1", "--store", "memory://"],
        stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=120) == 0
    text = output.decode(errors="replace")
    assert "━" in text  # a bar was drawn while the run went on ...
    before_summary = text[: text.index("Experiment exp_")]
    last_bar = before_summary.rindex("━")
    assert "\x1b[2K" in before_summary[last_bar:]  # ... and erased before the summary
    assert "Done" not in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer, compile_name, decision",
    [
        pytest.param(
            "gepa",
            "GEPA compile",
            "Decision: Reflect on candidate ",
            marks=pytest.mark.skipif(
                (gepa_version() or MIN_GEPA) < MIN_GEPA,
                reason="gepa < 0.1 (DSPy 3.2): GEPA runs in degraded mode, no decisions",
            ),
        ),
        ("mipro", "MIPROv2 compile", "Decision: Optuna trial "),
        ("copro", "COPRO compile", "Decision: Try depth "),
        (
            "random-search",
            "BootstrapFewShotWithRandomSearch compile",
            "Decision: Candidate for seed ",
        ),
    ],
)
def test_demo_runs_each_optimizer(optimizer, compile_name, decision):
    store = f"memory://demo-{optimizer}"
    out = _demo("--store", store, "--optimizer", optimizer, "--verbose").stdout
    experiment_id = re.search(r"Experiment (exp_\w+) \(completed", out).group(1)
    archived = ResultStore.open(store).get_experiment(experiment_id)
    assert archived.status is ExperimentStatus.COMPLETED
    assert compile_name in [t.name for t in archived.trials]
    final = archived.trials[-1]
    best = next(t for t in archived.trials if t.id == final.parent_trial_ids[0])
    assert best.metadata["role"] == "candidate"
    assert final.score > archived.trials[0].score
    assert f"{best.name} · id {best.id}" in out  # the best candidate's timeline (--verbose)
    assert decision in out


def test_an_unknown_optimizer_is_refused_with_the_valid_names():
    result = CliRunner().invoke(main, ["demo", "--store", "memory://x", "--optimizer", "adam"])
    assert result.exit_code != 0
    assert "'adam' is not one of 'copro', 'gepa', 'mipro', 'random-search', 'simba'" in (
        result.output
    )
