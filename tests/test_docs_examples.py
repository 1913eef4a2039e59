"""Every ```python block of README.md and docs/*.md runs as written.

A block that cannot run (an outline with placeholders, a fragment of the block above)
is marked on the line just before its fence, with the reason::

    <!-- not runnable: experiment_id and trial_id stand for ids of your store -->

A block whose output a dedicated test checks is listed in :data:`CHECKED_ELSEWHERE`
(that test runs it); every other block runs here, in a fresh namespace, in an empty
directory with default settings (see tests/conftest.py).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import dspy
import pytest

import dspex

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
MARK = re.compile(r"^\s*<!--\s*not runnable:(?P<reason>.*?)-->\s*$")

CHECKED_ELSEWHERE = {
    "README.md#1": "tests/test_readme.py",
    "docs/offline-lm.md#1": "tests/offline/test_docs.py",
}
"""Blocks run by a test that also checks what they print (``path#n``: the n-th python
block of that file)."""


@dataclass(frozen=True)
class Block:
    path: str
    number: int  # 1 for the file's first python block
    line: int
    code: str
    not_runnable: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def key(self) -> str:
        return f"{self.path}#{self.number}"


def blocks() -> list[Block]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for number, match in enumerate(FENCE.finditer(text), start=1):
            line = text.count("\n", 0, match.start()) + 1
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = MARK.match(before)
            found.append(
                Block(
                    path=str(path.relative_to(ROOT)),
                    number=number,
                    line=line,
                    code=textwrap.dedent(match.group("code")),
                    not_runnable=mark.group("reason").strip() if mark else None,
                )
            )
    return found


RUNNABLE = [b for b in blocks() if b.not_runnable is None and b.key not in CHECKED_ELSEWHERE]
SLOW = {"docs/capture.md#1"}  # a real SIMBA run


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b, id=b.where, marks=[pytest.mark.slow] if b.key in SLOW else [])
        for b in RUNNABLE
    ],
)
def test_the_example_runs(block, capsys):
    previous = dspy.settings.lm
    try:
        exec(compile(block.code, block.where, "exec"), {"__name__": "__doc_example__"})
    finally:
        dspy.configure(lm=previous)  # examples configure DSPy globally
        dspex.autolog(disable=True)


def test_every_block_runs_somewhere_or_says_why_not():
    every = blocks()
    assert len(every) >= 9
    for block in every:
        if block.not_runnable is not None:
            assert len(block.not_runnable) > 10, f"{block.where}: say why it cannot run"
    for key, test in CHECKED_ELSEWHERE.items():
        assert (ROOT / test).is_file(), test
        assert any(b.key == key and b.not_runnable is None for b in every), (
            f"{key} is no runnable python block any more: update CHECKED_ELSEWHERE"
        )
        doc = key.split("#")[0].split("/")[-1]
        assert doc in (ROOT / test).read_text(encoding="utf-8"), f"{test} does not run {doc}"
