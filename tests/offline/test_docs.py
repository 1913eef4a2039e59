"""The usage example in docs/offline-lm.md runs and prints what it says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import dspy
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "offline-lm.md"


@pytest.mark.slow
def test_usage_example_prints_the_documented_scores():
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    promised = re.findall(r"# (\d+\.\d+)$", code, re.M)
    out = io.StringIO()
    previous = dspy.settings.lm
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(DOC), "exec"), {})
    finally:
        dspy.configure(lm=previous)  # the example configures a global LM; give it back
    assert promised == ["40.0", "100.0"]
    assert re.findall(r"^(\d+\.\d+)$", out.getvalue(), re.M) == promised
