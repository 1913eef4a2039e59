"""Flat memory: a block of direct calls keeps none of its events in the recording process."""

from __future__ import annotations

from benchmarks.bench_journal import run_child


def test_direct_calls_do_not_grow_the_recording_process():
    """DSPy's own history and trace off, growth counted from call 1,000: four times the
    calls do not grow the process more (the spool takes the events, and a program that
    records faster than the spool writes waits for it), while the memory store, which
    keeps the events by design, grows with them (about 4.5 KB per call)."""
    short = run_child("dspex", 4000, history=False)
    long = run_child("dspex", 13000, history=False)
    assert long["growth_mb"] < short["growth_mb"] + 6, (short, long)
    assert long["growth_mb"] < 30, long
    in_memory = run_child("memory", 13000, history=False)
    assert in_memory["growth_mb"] > long["growth_mb"] + 20, (in_memory, long)
