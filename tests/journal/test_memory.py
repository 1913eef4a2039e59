"""Flat memory: a block of direct calls keeps none of its events in the recording process."""

from __future__ import annotations

from benchmarks.bench_journal import growth_per_call_kb, run_child


def test_direct_calls_do_not_grow_the_recording_process():
    """DSPy's own history and trace off: RSS sampled every 1,000 calls settles (malloc
    arenas, caches) and then stays flat with the spool (it takes the events, and a
    program that records faster than the spool writes waits for it), while the memory
    store, which keeps the events by design, grows with them (about 4.5 KB per call).
    The slope, not the highest sample, is compared: one sample can be a few MB high
    while a batch is in flight to the store."""
    spooled = run_child("dspex", 20000, history=False)
    in_memory = run_child("memory", 6000, history=False)
    flat = growth_per_call_kb(spooled["samples_mb"], skip=8)  # settles within 8,000 calls
    growing = growth_per_call_kb(in_memory["samples_mb"])
    assert flat < 1.0, (flat, spooled["samples_mb"])
    assert spooled["growth_mb"] < 30, spooled
    assert growing > 3.0, (growing, in_memory["samples_mb"])
    assert spooled["spool_lag_ms"] > 0  # the spool wrote them (its bound: tests/journal/test_kill)
    assert in_memory["spool_lag_ms"] is None  # no spool with the memory store


def test_growth_per_call_is_the_slope_after_the_warm_up():
    leaking = [100.0 + 5.0 * k for k in range(10)]  # 5 MB per 1,000 calls
    assert abs(growth_per_call_kb(leaking) - 5.12) < 1e-9
    jittery = [100.0, 140.0, 90.0, 101.0, 104.0, 100.0, 103.0, 100.0, 102.0, 101.0]
    assert abs(growth_per_call_kb(jittery)) < 0.5
