"""What recording costs, counted in CPU instructions rather than seconds.

    python -m benchmarks.bench_instructions                # needs valgrind; ~15 minutes
    python -m benchmarks.bench_instructions --examples 100 --no-mlflow

Wall time on a shared 2-core machine moves by ±50% from one minute to the next, which
hides differences of 10-30%. Valgrind's callgrind counts the instructions a run executes,
whatever else the machine does: the floors to within a fraction of a percent from run to
run; a configuration with background threads (the journal's spool, a pool) within a few
percent, since how its threads take turns changes what each flush or hand-off does.
It is the measure the speed targets of ``docs/capture.md`` are checked against;
``bench_public_path`` gives the wall-time view beside MLflow.

Each configuration of ``bench_public_path`` (same program, data, zero-latency LM, file
store) runs in its own process under callgrind three times: a warm-up run on one example
(imports, first-call caches) followed by nothing, by a run on 1 example, or by a run on
``--examples + 1`` examples. The last two differ by the marginal cost of ``--examples``
examples; the second minus the first, less one example, is the fixed cost of one more
experiment (opening, sealing, archiving), given beside the floor's. The table gives
instructions per example, the ratio to the floor, and the ratio for one experiment of
``--examples`` examples with its fixed cost included. The count stops before the
records are read back to check that every LM call was recorded.

OpenInference's ``DSPyInstrumentor`` (spans kept by OpenTelemetry's in-memory exporter)
and ``mlflow.dspy.autolog()`` (traces in a sqlite tracking store, flushed) get rows of
their own, each in its own processes like every configuration, when installed
(``pip install 'dspex[bench]'``); MLflow's runs take the longest under callgrind.

Callgrind runs the program tens of times slower than the machine does, but some of
dspex's work is driven by time: new events go to the spool every
``journal.flush_interval`` (0.1 s) and to the store every second (the pump, for live
views), and the harness's pool looks at results posted by a worker running items sent
ahead every 50 ms. Left as they are, a write (or a look) under callgrind would cover tens
of times fewer examples than it does natively, and its fixed cost would be counted that
many times too often. So each table first measures how much slower callgrind runs its
floor (the floor's seconds per example under callgrind over its seconds per example run
natively, the median of three), and its other configurations run with these intervals
stretched by that factor: a write covers as many examples as it would natively. The
factor is printed above the table.

Callgrind runs without the CPU's SHA extensions, so hashing (the store's per-record
SHA-256) counts more instructions than it costs on the machine.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

__all__ = ["main"]

CONFIGURATIONS = {
    "evaluation": {
        "dspy.Evaluate, no-op callback": "evaluate_floor",
        "exp.evaluate + archive": "exp_evaluate",
        "dspy.Evaluate in experiment + archive": "evaluate_in_experiment",
        "exp.evaluate, events not written": "exp_evaluate_unwritten",
        "dspy.Evaluate, capture layer only": "evaluate_capture_only",
        "dspy.Evaluate, OpenInference": "evaluate_openinference",
        "dspy.Evaluate, mlflow.dspy.autolog": "evaluate_mlflow",
    },
    "direct calls": {
        "calls, no-op callback": "calls_floor",
        "calls in experiment + archive": "calls_in_experiment",
        "calls in experiment, events not written": "calls_unwritten",
        "calls, capture layer only": "calls_capture_only",
        "calls, OpenInference": "calls_openinference",
        "calls, mlflow.dspy.autolog": "calls_mlflow",
    },
}
TOOLS = {"openinference": "openinference-instrumentation-dspy", "mlflow": "mlflow"}  # distributions

_ROOT = Path(__file__).resolve().parents[1]
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)
_TIMED = re.compile(r"^seconds per example: ([0-9.e+-]+)$", re.MULTILINE)
_FLUSH_INTERVAL = 0.1  # journal.flush_interval's default
SCALE_ENV = "DSPEX_BENCH_TIME_SCALE"
"""The factor the child stretches the journal's time-driven intervals by."""


def _child(method: str, examples: int, built: int) -> None:
    """One configuration in this process (run under callgrind by the parent): a warm-up
    run on one example, then a run on ``examples`` examples (none when 0), whose seconds
    per example it prints. With ``DSPEX_BENCH_TIME_SCALE`` set, the journal's flush and
    pump intervals and the pool's polls are that many times their defaults (see the module docs)."""
    from benchmarks.bench_public_path import Setup

    scale = float(os.environ.get(SCALE_ENV) or 1)
    if scale != 1:
        import dspex.journal.journal
        import dspex.workers.pool

        os.environ["DSPEX_JOURNAL_FLUSH_INTERVAL"] = str(min(_FLUSH_INTERVAL * scale, 60))
        dspex.journal.journal.PUMP_INTERVAL *= scale
        dspex.workers.pool._QUIET_POLL *= scale
    with tempfile.TemporaryDirectory(prefix="dspex-bench-") as tmp:
        # the same data whatever is measured; a tool only in its own configurations
        tool = {name: name in method for name in TOOLS}
        setup = Setup(built, tmp, mlflow=tool["mlflow"], openinference=tool["openinference"])
        devset = setup.devset
        setup.devset = devset[:1]
        getattr(setup, method)()
        if examples:
            setup.devset = devset[:examples]
            started = time.perf_counter()
            getattr(setup, method)()
            print(f"seconds per example: {(time.perf_counter() - started) / examples}")
        os.getsid(0)  # the parent's callgrind dumps its count here (--dump-before=getsid)
        counted = setup.check()  # so reading the records back is not counted
        if tool["mlflow"]:
            from benchmarks.bench_capture import _disable_mlflow

            _disable_mlflow()
        setup.store.close()
        if counted:
            raise SystemExit(f"{method}: {counted} LM calls made but not recorded")


def _native_seconds(method: str, examples: int) -> float:
    """Seconds per example of ``method`` run natively (no callgrind): the median of three."""
    times = []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_instructions", "--child", method]
            + [str(examples)] * 2,
            capture_output=True, text=True, check=False, cwd=_ROOT,
        )  # fmt: skip
        match = _TIMED.search(done.stdout)
        if done.returncode != 0 or match is None:
            raise SystemExit(f"{method} failed:\n{done.stderr[-2000:]}")
        times.append(float(match.group(1)))
    return statistics.median(times)


def _instructions(method: str, examples: int, built: int, scale: float = 1) -> tuple[int, float]:
    """Instructions counted in ``method``'s child under callgrind, and its seconds per
    example (0 without a measured run)."""
    with tempfile.TemporaryDirectory(prefix="dspex-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            "--dump-before=getsid",  # the count up to the child's os.getsid call
            sys.executable,
            "-m",
            "benchmarks.bench_instructions",
            "--child",
            method,
            str(examples),
            str(built),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0", SCALE_ENV: str(scale)}
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, check=False, cwd=_ROOT
        )
        if done.returncode != 0:
            raise SystemExit(f"{method} under callgrind failed:\n{done.stderr[-2000:]}")
        counted = out.with_name(out.name + ".1")
        if not counted.exists():
            raise SystemExit(f"callgrind dumped no count at the end of {method}'s runs")
        match = _TOTALS.search(counted.read_text())
        if match is None:
            raise SystemExit(f"no instruction total in callgrind's output for {method}")
        timed = _TIMED.search(done.stdout)
        return int(match.group(1)), float(timed.group(1)) if timed else 0.0


def table(name: str, configs: dict[str, str], examples: int, jobs: int) -> str:
    built = examples + 1
    labels = list(configs)
    floor = labels[0]
    native = _native_seconds(configs[floor], built)  # first: alone on the machine
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # counts do not depend on load
        futures: dict[str, list[Future[tuple[int, float]]]] = {
            floor: [pool.submit(_instructions, configs[floor], n, built) for n in (0, 1, built)]
        }
        scale = max(futures[floor][2].result()[1] / native, 1.0)
        for label in labels[1:]:
            futures[label] = [
                pool.submit(_instructions, configs[label], n, built, scale) for n in (0, 1, built)
            ]
        runs = {label: [f.result()[0] for f in fs] for label, fs in futures.items()}
    per = {label: (many - one) / examples for label, (_, one, many) in runs.items()}
    once = {label: one - warm - per[label] for label, (warm, one, _) in runs.items()}
    note = (
        f"callgrind ran the floor {scale:.0f}x slower than natively: the journal's writes"
        f" spaced {scale:.0f}x (flush every {min(_FLUSH_INTERVAL * scale, 60):.1f} s)"
    )
    header = (
        f"{'configuration':<40} {'instr/' + name:>14} {'× floor':>8} "
        f"{'fixed/experiment':>17} {f'× floor, {examples} + fixed':>22}"
    )
    rows = [note, header, "-" * len(header)]
    for label in labels:
        fixed = once[label] - once[floor]
        whole = (per[label] * examples + fixed) / (per[floor] * examples)
        rows.append(
            f"{label:<40} {per[label] / 1e6:>13.2f}M {per[label] / per[floor]:>8.3f} "
            f"{fixed / 1e6:>16.1f}M {whole:>22.3f}"
        )
    return "\n".join(rows)


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="examples (and direct calls)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at once")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    parser.add_argument("--no-openinference", action="store_true", help="leave OpenInference out")
    parser.add_argument(
        "--child", nargs=3, metavar=("METHOD", "N", "BUILT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv if argv is not None else [])
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind); skipped")
        return
    left_out = {"mlflow": args.no_mlflow, "openinference": args.no_openinference}
    for name, distribution in TOOLS.items():
        if not left_out[name] and not _installed(distribution):
            print(f"note: {name} not installed (pip install 'dspex[bench]'): left out")
            left_out[name] = True
    n = args.examples
    for title, name, unit in (
        (f"Evaluating {n} examples", "evaluation", "example"),
        (f"{n} direct Predict calls", "direct calls", "call"),
    ):
        configs = {
            label: method
            for label, method in CONFIGURATIONS[name].items()
            if not any(left_out[tool] and tool in method for tool in TOOLS)
        }
        print(f"{title}, one thread, CPU instructions (callgrind)")
        print(table(unit, configs, n, args.jobs))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
