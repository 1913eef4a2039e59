"""The README's Python example runs as written and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

import dspy
from click.testing import CliRunner

import dspex
from dspex.cli import main
from dspex.cli._store import cli_store
from dspex.view.web import create_app
from tests.view.conftest import make_client

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs(capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), flags=re.S).group(1)
    namespace: dict[str, object] = {}
    previous = dspy.settings.lm
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        dspy.configure(lm=previous)  # the example configures DSPy globally
    out = capsys.readouterr().out
    exp = namespace["exp"]
    archived = dspex.ResultStore.default().get_experiment(exp.id)
    assert archived.status is dspex.ExperimentStatus.COMPLETED
    decisions = [
        e.payload.get("strategy")
        for t in archived.trials
        for e in t.events
        if e.kind is dspex.EventKind.DECISION
    ]
    assert {"append_a_rule", "append_a_demo"} & set(decisions)
    baseline, final = namespace["baseline"], namespace["final"]
    assert f"{baseline.score} -> {final.score}" in out
    assert final.score > baseline.score
    assert "Trial" in out


def test_what_the_readme_records_is_visible_with_the_commands_it_suggests(capsys, monkeypatch):
    code = re.search(r"```python\n(.*?)```", README.read_text(), flags=re.S).group(1)
    namespace: dict[str, object] = {}
    previous = dspy.settings.lm
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        dspy.configure(lm=previous)
    experiment_id = namespace["exp"].id  # type: ignore[attr-defined]
    monkeypatch.delenv("DSPEX_ENV")  # a user's shell, not the tests' environment
    dspex.config.reset()  # a new process: nothing configured, the same directory
    dspex.ResultStore.reset_default()
    listing = CliRunner().invoke(main, ["experiments", "ls"], env={"COLUMNS": "120"})
    assert experiment_id in listing.output
    client = make_client(create_app(cli_store(None)))  # what `dspex ui` serves
    assert experiment_id in client.get("/").text
