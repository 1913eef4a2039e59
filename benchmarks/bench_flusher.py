"""What the spool's flusher thread costs a program that records as fast as it can.

    python -m benchmarks.bench_flusher                 # 1,000 direct calls, 5 repetitions
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
  when a flush is due, so nothing stays in memory longer).

The main thread's kernel time per call (``RUSAGE_THREAD``) is printed beside the wall
time: a thread that waits for the GIL while the main thread runs Python is woken each time
the main thread lets the GIL go for a moment (DSPy reads ``os.urandom`` several times a
call), and that wake is paid in the main thread's kernel time. Without the hand-off that
was most of dspex's wall-time overhead on direct calls; this benchmark is the check for
any change to when the flusher wakes.
"""

from __future__ import annotations

import argparse
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


def _child(mode: str, calls: int, reps: int) -> None:
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
        for _ in range(reps):
            for method, samples in rows.items():
                before = resource.getrusage(resource.RUSAGE_THREAD)
                started = time.perf_counter()
                getattr(setup, method)()
                wall = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_THREAD)
                samples.append(
                    [wall / calls * 1e6, (after.ru_stime - before.ru_stime) / calls * 1e6]
                )
        counted = setup.check()
        setup.store.close()
    if counted:
        raise SystemExit(f"{mode}: {counted} LM calls made but not recorded")
    print(json.dumps(rows))


def run_child(mode: str, calls: int, reps: int) -> dict[str, list[list[float]]]:
    """``mode``'s child in a fresh process: per repetition, [wall µs, main-thread kernel µs]
    per call for the floor and for dspex."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_flusher", "--child", mode, str(calls), str(reps)],
        capture_output=True, text=True, check=False, cwd=_ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-2000:]}")
    rows: dict[str, list[list[float]]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def table(calls: int, reps: int) -> str:
    lines = [
        f"{'flusher thread':<22} {'floor µs':>9} {'dspex µs':>9} {'× floor':>8} "
        f"{'kernel µs (floor / dspex)':>26}",
    ]
    for label, mode in MODES.items():
        rows = run_child(mode, calls, reps)
        floor, dspex = rows["calls_floor"], rows["calls_in_experiment"]
        ratio = statistics.median(d[0] / f[0] for f, d in zip(floor, dspex, strict=True))
        kernel = (
            f"{statistics.median(f[1] for f in floor):.0f} / "
            f"{statistics.median(d[1] for d in dspex):.0f}"
        )
        lines.append(
            f"{label:<22} {statistics.median(f[0] for f in floor):>9.0f} "
            f"{statistics.median(d[0] for d in dspex):>9.0f} {ratio:>8.3f} {kernel:>26}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        _child(args[1], int(args[2]), int(args[3]))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_flusher")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    parsed = parser.parse_args(args)
    print(f"direct calls, {parsed.calls} per repetition, {parsed.reps} repetitions (medians)")
    print(table(parsed.calls, parsed.reps))


if __name__ == "__main__":
    main()
