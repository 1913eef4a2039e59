"""benchmarks/bench_optimizers.py prints its table and counts every LM call."""

from __future__ import annotations

from benchmarks import bench_optimizers


def test_bench_optimizers_prints_the_table(capsys):
    (row,) = bench_optimizers.main(["--optimizers", "random-search"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == list(bench_optimizers.COLUMNS)
    assert out.splitlines()[1].split()[0] == "random-search"
    assert row["recorded"] == row["requests"] > 0
    assert row["candidates"] >= 4 and row["decisions"] >= row["candidates"]
    assert row["final"] >= row["baseline"]
