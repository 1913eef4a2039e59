"""benchmarks/bench_flusher.py: with the flusher never woken, or woken every second, every
call is still recorded (the recording thread writes the spool itself)."""

from __future__ import annotations

import pytest
from benchmarks.bench_flusher import run_child


@pytest.mark.parametrize("mode", ["never", "every_second", "interval_only"])
def test_each_flusher_mode_records_every_call_and_reports_wall_and_kernel_time(mode):
    # the child exits non-zero if a call went unrecorded
    rows = run_child(mode, 20, 2, fill=False)
    assert set(rows) == {"calls_floor", "calls_in_experiment"}
    for samples in rows.values():
        assert len(samples) == 2
        for wall, kernel, collecting, full in samples:
            assert wall > 0 and kernel >= 0 and collecting >= 0 and full >= 0
