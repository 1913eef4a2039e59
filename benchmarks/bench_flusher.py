"""What the spool's flusher thread costs a program that records as fast as it can.

    python -m benchmarks.bench_flusher                 # 1,000 direct calls, 8 repetitions
    python -m benchmarks.bench_flusher --calls 300 --reps 3

Direct ``Predict`` calls in an experiment (file store, the offline LM of
``bench_public_path``), each repetition paired with the floor (the same calls with a no-op
callback) in the same process. Three ways of running the journal's flusher thread, each in
a process of its own:

- ``as shipped``: it wakes when a trial's flush is due (every ``journal.flush_interval``,
  0.1 s), and the recording thread, right after it wrote its trial itself, gives it the
  GIL (:class:`dspex.workers.handoff.Handoff`);
- ``without the hand-off``: the same, but the recording thread keeps the GIL (dspex
  before the hand-off);
- ``woken every 1 s``: it sleeps at least a second between rounds;
- ``never woken``: it does not run (the recording thread still writes the spool itself
  when a flush is due, so nothing stays in memory longer);
- ``held for the interval``: as shipped, but a trial's events wait for the interval
  however many there are (dspex before ``FLUSH_EVENTS``).

The main thread's kernel time per call (``RUSAGE_THREAD``) is printed beside the wall
time: a thread that waits for the GIL while the main thread runs Python is woken each time
the main thread lets the GIL go for a moment (DSPy reads ``os.urandom`` several times a
call), and that wake is paid in the main thread's kernel time. Without the hand-off that
was most of dspex's wall-time overhead on direct calls; this benchmark is the check for
any change to when the flusher wakes.

Garbage collection is printed too (its mean time a call and the full collections), in the
state of a long run: each child first fills DSPy's LM history (10,000 calls, the
floor's), after which DSPy frees an old entry for each new one and the floor alone never
starts a collection. Events that dspex holds in memory until the next write can start
them; each then walks DSPy's recent history (see ``dspex.journal.writer.FLUSH_EVENTS``).
Full collections come every few thousand calls, so compare their totals, not medians.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "run_child"]

MODES = {
    "as shipped": "shipped",
    "without the hand-off": "no_handoff",
    "woken every 1 s": "every_second",
    "never woken": "never",
    "held for the interval": "interval_only",
}
_ROOT = Path(__file__).resolve().parents[1]


def _set_flusher(mode: str) -> None:
    import dspex.journal.writer as writer

    if mode == "no_handoff":
        from dspex.workers.handoff import Handoff

        def keep_the_gil(self: Any, timeout: float = 0.0) -> bool:
            return False

        Handoff.give_way = keep_the_gil  # type: ignore[method-assign]
    elif mode == "every_second":
        late = writer.ExperimentSpool._flush_late

        def at_least_a_second(self: Any) -> float:
            return max(late(self), 1.0)

        writer.ExperimentSpool._flush_late = at_least_a_second  # type: ignore[method-assign]
    elif mode == "never":

        def idle(self: Any) -> None:
            self._stop.wait()

        writer.ExperimentSpool._run = idle  # type: ignore[method-assign]
    elif mode == "interval_only":
        writer.FLUSH_EVENTS = 10**9


class _Collections:
    """Time spent in garbage collection, and full collections, since :meth:`reset`."""

    def __init__(self) -> None:
        self.ns = self.full = self._started = 0
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.ns = self.full = 0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.ns += time.perf_counter_ns() - self._started
            self.full += info["generation"] == 2


def _fill_history(setup: Any) -> None:
    """DSPy's LM history full, as after a long run: the floor's calls fill it."""
    import dspy

    devset = setup.devset
    size = int(dspy.settings.get("max_history_size") or 10_000)
    setup.devset = [devset[i % len(devset)] for i in range(size + 100)]
    setup.calls_floor()
    setup.devset = devset


def _child(mode: str, calls: int, reps: int, fill: bool) -> None:
    from benchmarks.bench_public_path import Setup

    _set_flusher(mode)
    rows: dict[str, list[list[float]]] = {"calls_floor": [], "calls_in_experiment": []}
    with tempfile.TemporaryDirectory(prefix="dspex-bench-") as tmp:
        setup = Setup(calls, tmp, mlflow=False, openinference=False)
        devset = setup.devset
        setup.devset = devset[:1]
        setup.calls_floor()
        setup.calls_in_experiment()  # warm-up: imports, first store
        setup.devset = devset[:calls]
        if fill:
            _fill_history(setup)
        collections = _Collections()
        for _ in range(reps):
            for method, samples in rows.items():
                before = resource.getrusage(resource.RUSAGE_THREAD)
                collections.reset()
                started = time.perf_counter()
                getattr(setup, method)()
                wall = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_THREAD)
                samples.append(
                    [
                        wall / calls * 1e6,
                        (after.ru_stime - before.ru_stime) / calls * 1e6,
                        collections.ns / calls / 1e3,
                        collections.full,
                    ]
                )
        counted = setup.check()
        setup.store.close()
    if counted:
        raise SystemExit(f"{mode}: {counted} LM calls made but not recorded")
    print(json.dumps(rows))


def run_child(
    mode: str, calls: int, reps: int, *, fill: bool = True
) -> dict[str, list[list[float]]]:
    """``mode``'s child in a fresh process: per repetition, [wall µs, main-thread kernel µs,
    garbage collection µs] per call and the full collections, for the floor and for dspex.
    ``fill``: DSPy's LM history filled first (see the module docs)."""
    command = [sys.executable, "-m", "benchmarks.bench_flusher", "--child", mode, str(calls)]
    done = subprocess.run(
        [*command, str(reps), "fill" if fill else "empty"],
        capture_output=True, text=True, check=False, cwd=_ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-2000:]}")
    rows: dict[str, list[list[float]]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def table(calls: int, reps: int) -> str:
    lines = [
        f"{'flusher thread':<22} {'floor µs':>9} {'dspex µs':>9} {'× floor':>8} "
        f"{'mean × floor':>12} {'kernel µs':>10} {'gc µs':>11} {'full gcs':>9}",
    ]
    for label, mode in MODES.items():
        rows = run_child(mode, calls, reps)
        floor, dspex = rows["calls_floor"], rows["calls_in_experiment"]
        ratio = statistics.median(d[0] / f[0] for f, d in zip(floor, dspex, strict=True))
        mean_ratio = statistics.mean(d[0] for d in dspex) / statistics.mean(f[0] for f in floor)
        kernel = (
            f"{statistics.median(f[1] for f in floor):.0f} / "
            f"{statistics.median(d[1] for d in dspex):.0f}"
        )
        collected = (
            f"{statistics.mean(f[2] for f in floor):.1f} / "
            f"{statistics.mean(d[2] for d in dspex):.1f}"
        )
        full = f"{sum(f[3] for f in floor):.0f} / {sum(d[3] for d in dspex):.0f}"
        lines.append(
            f"{label:<22} {statistics.median(f[0] for f in floor):>9.0f} "
            f"{statistics.median(d[0] for d in dspex):>9.0f} {ratio:>8.3f} {mean_ratio:>12.3f} "
            f"{kernel:>10} {collected:>11} {full:>9}"
        )
    lines.append(
        "kernel µs: the main thread's, a call (median); gc µs: garbage collection, a call "
        "(mean); full gcs: over all repetitions; each floor / dspex"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        _child(args[1], int(args[2]), int(args[3]), args[4] == "fill")
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_flusher")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=8)
    parsed = parser.parse_args(args)
    print(f"direct calls, {parsed.calls} per repetition, {parsed.reps} repetitions (medians)")
    print(table(parsed.calls, parsed.reps))


if __name__ == "__main__":
    main()
