"""benchmarks/bench_flusher.py: with the flusher never woken, or woken every second, every
call is still recorded (the recording thread writes the spool itself)."""

from __future__ import annotations

import pytest
from benchmarks.bench_flusher import run_child


@pytest.mark.parametrize("mode", ["never", "every_second"])
def test_each_flusher_mode_records_every_call_and_reports_wall_and_kernel_time(mode):
    rows = run_child(mode, 20, 2)  # the child exits non-zero if a call went unrecorded
    assert set(rows) == {"calls_floor", "calls_in_experiment"}
    for samples in rows.values():
        assert len(samples) == 2
        assert all(wall > 0 and kernel >= 0 for wall, kernel in samples)
