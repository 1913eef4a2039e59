"""Flat memory: a block of direct calls keeps none of its events in the recording process."""

from __future__ import annotations

from benchmarks.bench_journal import run_child


def test_direct_calls_do_not_grow_the_recording_process():
    """3,000 direct calls after 1,000 to warm up, DSPy's own history and trace off: what
    the process keeps does not grow with them (before the spool: about 4.5 KB per call,
    13 MB here; the memory store, which keeps the events by design, shows it)."""
    spooled = run_child("dspex", 4000, history=False)
    assert spooled["growth_mb"] < 3, spooled
    in_memory = run_child("memory", 4000, history=False)
    assert in_memory["growth_mb"] > spooled["growth_mb"] + 8, (in_memory, spooled)
