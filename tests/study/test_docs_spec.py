"""The complete spec in docs/studies.md runs as written (its Python blocks run in
tests/test_docs_examples.py)."""

from __future__ import annotations

import re
from pathlib import Path

from dspex import ResultStore
from dspex.model.study import StudyStatus
from dspex.study import Study, load_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "studies.md"


def test_the_documented_spec_runs_as_written(tmp_path):
    blocks = re.findall(r"^```toml\n(.*?)^```", DOC.read_text(), flags=re.M | re.S)
    (spec_text,) = [b for b in blocks if b.startswith('name = "simba-vs-mipro"')]
    path = tmp_path / "study.toml"
    path.write_text(spec_text)
    spec = load_spec(path)
    assert [a.name for a in spec.arms] == ["simba", "mipro"] and spec.run.max_concurrent == 2
    study = Study(spec)
    record = study.run(store=ResultStore.open("memory://"), engine="inline")
    assert record.status is StudyStatus.COMPLETED and len(record.cells) == 8
    assert record.verdict is not None and record.verdict.treatment == "mipro"
