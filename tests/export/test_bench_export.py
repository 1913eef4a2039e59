"""The export benchmark runs: recording with and without the live exporter, then an export."""

from __future__ import annotations

import logging
import re

import pytest
from benchmarks import bench_export


@pytest.mark.slow
def test_bench_export_prints_both_tables(capsys):
    levels = [logging.getLogger(n).level for n in ("dspy", "dspex")]
    bench_export.main(["--reps", "1", "--examples", "8", "--steps", "1"])
    assert [logging.getLogger(n).level for n in ("dspy", "dspex")] == levels  # left as found
    out = capsys.readouterr().out
    rows = dict(
        re.findall(r"^(no exporter|live, receiver down|live, receiver up)\s.*\s(\S+)$", out, re.M)
    )
    assert rows["no exporter"] == "-"
    trials = re.search(r"^live, receiver down\s+\S+\s+\S+\s+\S+\s+(\d+)", out, re.M).group(1)
    assert rows["live, receiver down"] == f"0/{trials}"
    assert rows["live, receiver up"] == f"{trials}/{trials}"
    assert re.search(rf"experiment: {trials} trials, \d+ events -> \d+ spans", out)
    assert f"exported {trials} of {trials} trials" in out
