"""The README's Python example runs as written and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

import dspy

import dspex

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
