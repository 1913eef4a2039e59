"""The capture benchmark runs, compares against the no-op floor, and finds every call recorded."""

from __future__ import annotations

import re

from benchmarks import bench_capture


def test_bench_capture_prints_the_table_and_the_burst(capsys):
    bench_capture.main(
        ["--calls", "5", "--reps", "2", "--burst", "200", "--no-mlflow", "--retrievals", "10"]
    )
    out = capsys.readouterr().out
    rows = {
        m.group(1).strip(): float(m.group(2))
        for m in re.finditer(
            r"^(no callback|no-op BaseCallback|DspexCallback)\s+[\d.]+\s+"
            r"[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)$",
            out,
            flags=re.M,
        )
    }
    assert set(rows) == {"no callback", "no-op BaseCallback", "DspexCallback"}
    assert rows["no-op BaseCallback"] == 1.0 and rows["DspexCallback"] > 0
    assert "burst, DspexCallback: 200 calls from 8 threads" in out
    assert "200 recorded (100.00%)" in out
    # the retrieval table: every configuration for both calls, dspex's added cost per call,
    # and every retrieval and embedding call of the recording runs recorded (3 reps x 11)
    costs = {
        (m.group(1), m.group(2).strip()): float(m.group(3))
        for m in re.finditer(
            r"^(retrieval|embedding)\s+(without dspex|patched, no trial|dspex recording)\s+"
            r"[\d.]+\s+([+-][\d.]+)\s+[\d.]+\s+[\d.]+\s+[+-][\d.]+$",
            out,
            flags=re.M,
        )
    }
    assert len(costs) == 6
    assert costs["retrieval", "without dspex"] == 0.0
    assert "recorded: 33 of 33 retrievals, 66 of 66 embedding calls" in out
