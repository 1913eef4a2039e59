"""The journal's memory and speed with many direct calls in one block. Prints a table.

    python -m benchmarks.bench_journal              # 5,000 calls (quick)
    python -m benchmarks.bench_journal --full       # the issue's size: 100,000 calls
    python -m benchmarks.bench_journal --calls 20000 --no-history   # DSPy's history off

Each configuration runs in its own process (fresh RSS): ``N`` direct ``dspy.Predict``
calls on the offline LM inside one ``dspex.experiment`` block with a file store (and the
write-ahead spool), against the same calls with DSPy alone. Columns: RSS growth over the
calls (from the 1,000th call to the last, so that imports and caches warmed up are not
counted), peak RSS, time to leave the block (the trial's write and the seal), the wall
time per call, and the spool's lag: the longest an event waited in memory before it was
written to the spool (the SIGKILL loss bound, ``journal.flush_interval``, as it held).
RSS is read from /proc/self/statm every 1,000 calls. DSPy itself keeps
the last ``max_history_size`` (10,000) LM calls and ``max_trace_size`` (10,000) predictions
in memory; ``--no-history`` turns both off (``disable_history``, ``max_trace_size=0``) to
show what dspex alone keeps.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARM = 1000


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(mode: str, calls: int, history: bool = True) -> dict[str, Any]:
    import dspy

    import dspex
    from dspex.store import ResultStore

    directory = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    dspex.configure(journal={"spool_dir": str(directory / "spool")})
    predict = dspy.Predict("question -> answer")
    samples: list[float] = []
    quiet = {} if history else {"disable_history": True, "max_trace_size": 0}
    with dspy.context(lm=dspex.offline_lm(), **quiet):
        predict(question="What is 1 + 1?")  # imports and first-call caches
        url = f"file://{directory / 'store'}" if mode != "memory" else "memory://bench"
        store = ResultStore.open(url)
        block = dspex.experiment("bench", store=store) if mode != "dspy" else None
        if block is not None:
            block.__enter__()
        started = time.perf_counter()
        for i in range(calls):
            predict(question=f"What is {i % 97} + {i % 13}?")
            if (i + 1) % 1000 == 0:
                samples.append(_rss_mb())
        per_call = (time.perf_counter() - started) / calls
        spool = block.journal.spool if block is not None else None
        lag_ms = spool.max_lag_ms if spool is not None else None
        leave = time.perf_counter()
        if block is not None:
            block.__exit__(None, None, None)
        seal = time.perf_counter() - leave
    warm = samples[0] if samples else _rss_mb()
    return {
        "samples_mb": samples,
        "growth_mb": max(samples, default=warm) - warm,
        "end_mb": samples[-1] if samples else warm,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seal_s": seal,
        "per_call_us": per_call * 1e6,
        "spool_lag_ms": lag_ms,
    }


def growth_per_call_kb(samples_mb: list[float], skip: int = 3) -> float:
    """The least-squares slope of RSS over the calls, in KB per call, leaving out the
    first ``skip`` samples (one every 1,000 calls): a leak shows as a slope, while the
    jitter of one sample (a batch in flight to the store, a malloc arena) does not."""
    points = list(enumerate(samples_mb))[skip:]
    if len(points) < 2:
        raise ValueError(f"need at least {skip + 2} samples, got {len(samples_mb)}")
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return slope * 1024 / 1000  # MB per 1,000 calls -> KB per call


def run_child(mode: str, calls: int, *, history: bool = True) -> dict[str, Any]:
    """One configuration in a fresh process: ``dspy`` (DSPy alone), ``dspex`` (a block
    with a file store), ``memory`` (a block with the memory store)."""
    argv = ["--child", mode, str(calls)] + ([] if history else ["--no-history"])
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_journal", *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    last: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return last


def _slope(row: dict[str, Any]) -> str:
    try:
        return f"{growth_per_call_kb(row['samples_mb']):.2f} KB/call"
    except ValueError:
        return "(too few calls)"


def _lag(row: dict[str, Any]) -> str:
    lag = row.get("spool_lag_ms")
    return "" if lag is None else f"{lag:.0f} ms"


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(argv[1], int(argv[2]), "--no-history" not in argv)))
        return
    calls = 100_000 if "--full" in argv else 5_000
    if "--calls" in argv:
        calls = int(argv[argv.index("--calls") + 1])
    history = "--no-history" not in argv
    rows = {mode: run_child(mode, calls, history=history) for mode in ("dspy", "dspex")}
    print(
        f"{calls:,} direct dspy.Predict calls in one block, offline LM, file store"
        + ("" if history else ", DSPy's LM history off")
    )
    print(
        f"{'':28} {'RSS growth':>11} {'RSS at end':>11} {'peak RSS':>9} "
        f"{'leave block':>12} {'per call':>9} {'slope':>13} {'spool lag':>10}"
    )
    names = {"dspy": "DSPy alone", "dspex": "dspex.experiment + spool"}
    for mode, row in rows.items():
        print(
            f"{names[mode]:28} {row['growth_mb']:>8.1f} MB {row['end_mb']:>8.0f} MB "
            f"{row['peak_mb']:>6.0f} MB {row['seal_s']:>10.2f} s {row['per_call_us']:>6.0f} us"
            f" {_slope(row):>13} {_lag(row):>10}"
        )
    extra = rows["dspex"]["growth_mb"] - rows["dspy"]["growth_mb"]
    print(f"growth over DSPy alone: {extra:.1f} MB ({extra * 1024 / calls:.2f} KB per call)")


if __name__ == "__main__":
    main(sys.argv[1:])
