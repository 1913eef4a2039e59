"""What exporting costs: a SIMBA experiment as OpenTelemetry traces, live and afterwards.

    python -m benchmarks.bench_export                     # ~1 minute on 2 cores
    python -m benchmarks.bench_export --reps 1 --examples 8 --steps 1    # a quick look
    python -m benchmarks.bench_export --reps 3 --otlp http://127.0.0.1:6006   # a real Phoenix

1. **Recording.** The same SIMBA compile (the offline LM, 16 training examples, 3 steps,
   4 threads) recorded into a memory store with

   - no exporter;
   - the live exporter (``export.otlp_endpoint``), its receiver down (a closed loopback
     port): every send fails; the report lists every trial;
   - the live exporter, a receiver that accepts (a local HTTP server answering 200, or
     the receiver given with ``--otlp``).

   Repetitions are interleaved; the table shows the median wall time of the
   ``with dspex.experiment(...)`` block (what a user waits for) and of the process CPU.
2. **Export afterwards** of one recorded experiment: trials mapped to spans, written as
   OTLP JSON, and sent over OTLP/HTTP (``dspex export --otlp``) to the accepting receiver.

Needs ``pip install 'dspex[otel]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["main"]


class _Accepting(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that reads each request and answers 200 (an empty response)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def accepting_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accepting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Only errors from these loggers (SIMBA logs each step; dspex each failed send)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def record(endpoint: str | None, train: list[Any], steps: int = 3) -> dict[str, Any]:
    """One recorded SIMBA compile; wall and CPU seconds of the experiment block, its record."""
    import dspy

    import dspex
    from dspex.offline import ArithQA, exact_match

    store = dspex.ResultStore.open("memory://")
    settings = {"export": {"otlp_endpoint": endpoint, "otlp_project": "bench"}} if endpoint else {}
    program = ArithQA()
    with dspex.config.overrides(**settings), dspy.context(lm=dspex.offline_lm()):
        # DSPy's progress bars
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            wall, cpu = time.perf_counter(), time.process_time()
            with dspex.experiment("bench-export", program=program, store=store) as exp:
                dspy.SIMBA(
                    metric=exact_match, bsize=8, num_candidates=3, max_steps=steps, max_demos=2,
                    num_threads=4,
                ).compile(program, trainset=train, seed=0)  # fmt: skip
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "experiment": store.get_experiment(exp.id)}


def run_recordings(
    reps: int, receiver: str, train: list[Any], steps: int
) -> dict[str, list[dict[str, Any]]]:
    configs = {
        "no exporter": None,
        "live, receiver down": closed_port_url(),
        "live, receiver up": receiver,
    }
    record(None, train, steps)  # warm up: imports, DSPy caches
    record(configs["live, receiver down"], train, steps)  # and the OpenTelemetry SDK's
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    names = list(configs)
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            runs[name].append(record(configs[name], train, steps))
    return runs


def recording_table(runs: dict[str, list[dict[str, Any]]]) -> str:
    floor = statistics.median(r["wall"] for r in runs["no exporter"])
    header = (
        f"{'configuration':<22} {'median wall s':>13} {'× none':>7} {'median CPU s':>13} "
        f"{'trials':>7} {'delivered':>10}"
    )
    rows = [header, "-" * len(header)]
    for name, samples in runs.items():
        wall = statistics.median(r["wall"] for r in samples)
        cpu = statistics.median(r["cpu"] for r in samples)
        last = samples[-1]["experiment"]
        report = last.metadata.get("otlp_export") or {}
        delivered = f"{report['delivered']}/{report['trials']}" if report else "-"
        rows.append(
            f"{name:<22} {wall:>13.2f} {wall / floor:>7.2f} {cpu:>13.2f} "
            f"{len(last.trials):>7} {delivered:>10}"
        )
    return "\n".join(rows)


def export_table(experiment: Any, receiver: str) -> str:
    from dspex.export import OtlpDestination, experiment_spans, send_experiment, write_otlp_json

    started = time.perf_counter()
    spans = sum(len(s) for _, s in experiment_spans(experiment))
    mapped = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        written = write_otlp_json(experiment, Path(tmp) / "exp.otlp.jsonl")
        size = (Path(tmp) / "exp.otlp.jsonl").stat().st_size
    destination = OtlpDestination(receiver, project="bench")
    sent = send_experiment(experiment, destination)
    destination.shutdown()
    events = sum(len(t.events) for t in experiment.trials)
    return "\n".join(
        [
            f"experiment: {len(experiment.trials)} trials, {events} events -> {spans} spans",
            f"map to spans:        {mapped:6.2f} s",
            f"write OTLP JSON:     {written.seconds:6.2f} s  ({size / 1e6:.1f} MB)",
            f"send OTLP/HTTP:      {sent.seconds:6.2f} s  ({sent.summary()})",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_export", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--otlp", metavar="URL", help="a real receiver instead of the local one")
    parser.add_argument("--examples", type=int, default=16, help="SIMBA's training examples")
    parser.add_argument("--steps", type=int, default=3, help="SIMBA's steps")
    args = parser.parse_args(argv or [])
    from dspex.offline import load_arith

    train = load_arith()[0][: args.examples]
    with quiet_loggers("dspy", "dspex"), accepting_receiver() as local:
        receiver = args.otlp or local
        runs = run_recordings(args.reps, receiver, train, args.steps)
        print(
            f"Recording a SIMBA compile ({len(train)} examples, {args.steps} steps; "
            f"{args.reps} interleaved reps; receiver up: {receiver})"
        )
        print(recording_table(runs))
        print()
        print("Exporting the recorded experiment afterwards")
        print(export_table(runs["no exporter"][-1]["experiment"], receiver))


if __name__ == "__main__":
    main(sys.argv[1:])
