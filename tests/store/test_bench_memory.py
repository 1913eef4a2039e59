"""The memory benchmark runs, and its answers are the reference's."""

from __future__ import annotations

from benchmarks import bench_memory


def test_bench_memory_prints_a_row_per_query_shape(capsys, monkeypatch):
    monkeypatch.setenv("DSPEX_BENCH_SCALE", "0.01")  # 1,000 experiments
    bench_memory.main()
    out = capsys.readouterr().out
    assert "Memory backend, 1,000 experiments" in out
    for name, _ in bench_memory.SHAPES:
        assert name in out
    assert "every page under 5 ms" in out
