"""What recording costs per ``dspy.Predict`` call, and whether every call is recorded.

    python -m benchmarks.bench_capture            # default sizes (~2 minutes on 2 cores)
    python -m benchmarks.bench_capture --calls 200 --reps 5 --burst 10000 --no-mlflow

The LM is a zero-latency custom engine (cache off), so the numbers are the overhead of
DSPy itself plus each way of observing it. Every configuration runs the same
``Predict("question -> answer")`` calls; repetitions are interleaved (config A, B, C,
D, A, B, ...) so that machine noise hits all of them alike, and the table reports
medians and the ratio to DSPy's own no-op ``BaseCallback`` (the floor: the cost of
DSPy's callback dispatch, which any callback-based recorder pays):

- ``no callback``: nothing installed;
- ``no-op BaseCallback``: the floor;
- ``DspexCallback``: dspex recording every module, adapter and LM call into a trial;
- ``mlflow.dspy.autolog``: MLflow tracing (with ``track_usage=True``, as it configures
  DSPy), traces written to a temporary sqlite tracking store. Skipped with a note when
  MLflow is not installed (``pip install 'dspex[bench]'``).

Then a burst of ``--burst`` calls from 8 threads checks the share of calls recorded:
LM call events in the trial for dspex (it must be 100%), traces in the tracking store
for MLflow (whose background exporter discards traces when its queue is full).

Last, the cost per retrieval and per embedding call (``--retrievals`` calls per
repetition, 0 leaves it out): ``dspy.retrievers.Embeddings(k=5)`` over a 64-passage
corpus and direct ``dspy.Embedder`` calls of one text, both over a local hashed
bag-of-words function (no network, no cache), so the numbers are DSPy's own cost plus
dspex's. DSPy gives retrievers and embedders no callbacks, so the floor is the same
calls without dspex; ``patched, no trial`` is the cost paid outside any experiment while
another one runs (dspex's patches are on, nothing records); ``dspex recording`` records
each retrieval (with its query's embedding call) and each embedder call into a trial,
and the run checks that the events equal the calls. CPU time of the process (DSPy's
``Embeddings`` searches on a thread of its own) and wall time, medians over interleaved
repetitions; ``added`` is the median difference to ``without dspex`` within a repetition.
The retriever's batching wait is lowered from DSPy's 0.1 s to 5 ms (a sequential search
waits it out whole), so wall time per retrieval is about 5 ms in every configuration.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any

__all__ = ["burst", "main", "measure", "retrieval_costs", "retrieval_table"]

ANSWER = "[[ ## answer ## ]]\n4\n\n[[ ## completed ## ]]"


class ZeroLatencyEngine:
    """A DSPy custom engine that answers at once and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def complete(self, request: Any) -> Any:
        from dspy.lm15 import Message, Response, TextPart, Usage

        with self._lock:
            self.calls += 1
        return Response(
            id=None,
            model="zero",
            message=Message.assistant([TextPart(ANSWER)]),
            finish_reason="stop",
            usage=Usage(input_tokens=50, output_tokens=5, total_tokens=55),
        )

    def stream(self, request: Any) -> Any:
        raise NotImplementedError("streaming is not benchmarked")

    def close(self) -> None:
        pass


def zero_latency_lm(engine: ZeroLatencyEngine) -> Any:
    import dspy

    return dspy.LM("bench/zero", engine=engine, cache=False, temperature=0.0)


Config = Callable[[], AbstractContextManager[Any]]


class Recorders:
    """The configurations that record, and how to count what each recorded."""

    def __init__(self, lm: Any, tracking_dir: str, *, mlflow: bool = True) -> None:
        from dspex.capture import DspexCallback

        self.lm = lm
        self.tracking_dir = tracking_dir
        self.dspex_callback = DspexCallback()
        self.recorders: list[Any] = []
        self.mlflow_callback, self.note = (
            _mlflow_callback(tracking_dir) if mlflow else (None, "MLflow left out (--no-mlflow)")
        )

    @contextmanager
    def dspex(self) -> Iterator[None]:
        import dspy

        from dspex.capture import instrumented, recording
        from dspex.capture.recorder import TrialRecorder
        from dspex.ids import new_id

        recorder = TrialRecorder(new_id("trl"))
        self.recorders.append(recorder)
        with (
            instrumented(),
            dspy.context(lm=self.lm, callbacks=[self.dspex_callback]),
            recording(recorder),
        ):
            yield

    def mlflow(self) -> AbstractContextManager[Any]:
        import dspy

        # what mlflow.dspy.autolog() configures: its callback and DSPy's usage tracking
        return dspy.context(lm=self.lm, callbacks=[self.mlflow_callback], track_usage=True)

    def dspex_recorded(self) -> int:
        return sum(1 for r in self.recorders for e in r.raw_events() if e.kind == "lm_call")

    def mlflow_recorded(self) -> int:
        """Traces in MLflow's store (one per top-level Predict call), once exported."""
        import sqlite3
        from contextlib import closing

        import mlflow

        mlflow.flush_trace_async_logging()
        with closing(sqlite3.connect(f"{self.tracking_dir}/mlflow.db")) as db:
            return int(db.execute("SELECT COUNT(*) FROM trace_info").fetchone()[0])


def _configs(rec: Recorders) -> dict[str, Config]:
    import dspy
    from dspy.utils.callback import BaseCallback

    noop = BaseCallback()
    configs: dict[str, Config] = {
        "no callback": lambda: dspy.context(lm=rec.lm, callbacks=[]),
        "no-op BaseCallback": lambda: dspy.context(lm=rec.lm, callbacks=[noop]),
        "DspexCallback": rec.dspex,
    }
    if rec.mlflow_callback is not None:
        configs["mlflow.dspy.autolog"] = rec.mlflow
    return configs


def _mlflow_callback(tracking_dir: str) -> tuple[Any, str | None]:
    """Run ``mlflow.dspy.autolog()`` and take its callback out of the global settings,
    so that it is active only inside its own configuration."""
    try:
        import mlflow
        import mlflow.dspy
    except ImportError:
        return None, "mlflow not installed: pip install 'dspex[bench]'"
    import logging

    import dspy

    for name in ("mlflow", "alembic"):  # MLflow's database migrations log at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(f"sqlite:///{tracking_dir}/mlflow.db")
    # an explicit artifact location, or MLflow creates ./mlruns in the working directory
    mlflow.create_experiment("dspex-bench", artifact_location=f"file://{tracking_dir}/artifacts")
    mlflow.set_experiment("dspex-bench")
    before = list(dspy.settings.callbacks)
    mlflow.dspy.autolog(silent=True)
    added = [c for c in dspy.settings.callbacks if c not in before]
    dspy.settings.configure(callbacks=before, track_usage=False)
    return (added[0] if added else None), None


def measure(config: Config, calls: int) -> float:
    """CPU microseconds of this process per Predict call under ``config`` (one thread).

    Process CPU time, not wall time: it includes every thread of this process (MLflow
    exports traces from a background thread) but not other processes competing for
    the machine, which made wall-clock medians swing by ±20% on a shared 2-core box.
    """
    import dspy

    predict = dspy.Predict("question -> answer")
    with config():
        predict(question="warm up")
        started = time.process_time()
        for i in range(calls):
            predict(question=f"What is {i} + 2?")
        elapsed = time.process_time() - started
    return elapsed / calls * 1e6


def burst(
    config: Config,
    count: Callable[[], int],
    engine: ZeroLatencyEngine,
    calls: int,
    threads: int = 8,
) -> dict[str, Any]:
    """``calls`` Predict calls from ``threads`` threads under ``config``: the share recorded."""
    import dspy
    from dspy.dsp.utils.settings import thread_local_overrides

    from dspex.capture.context import carried, scope

    predict = dspy.Predict("question -> answer")
    made_before, recorded_before = engine.calls, count()
    with config():
        overrides = thread_local_overrides.get()

        def adopt() -> None:
            thread_local_overrides.set(overrides)

        # the caller's DSPy settings and dspex's context, as DSPy's own threads carry them
        ask = carried(lambda i: predict(question=f"What is {i} + 2?"), scope())
        started = time.perf_counter()
        with ThreadPoolExecutor(threads, initializer=adopt) as pool:
            list(pool.map(ask, range(calls)))
        elapsed = time.perf_counter() - started
    made, recorded = engine.calls - made_before, count() - recorded_before
    return {
        "calls": made,
        "recorded": recorded,
        "share": recorded / made if made else 0.0,
        "seconds": elapsed,
    }


def run(
    calls: int, reps: int, burst_calls: int, *, mlflow: bool = True
) -> tuple[dict[str, list[float]], dict[str, dict[str, Any]], str | None]:
    """Interleaved per-call samples of every configuration, then the bursts."""
    engine = ZeroLatencyEngine()
    lm = zero_latency_lm(engine)
    with tempfile.TemporaryDirectory(prefix="dspex-bench-") as tracking_dir:
        rec = Recorders(lm, tracking_dir, mlflow=mlflow)
        configs = _configs(rec)
        samples: dict[str, list[float]] = {name: [] for name in configs}
        names = list(configs)
        for rep in range(reps):
            # rotate the order too, so that no configuration always runs first or last
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                samples[name].append(measure(configs[name], calls))
        bursts = {"DspexCallback": burst(rec.dspex, rec.dspex_recorded, engine, burst_calls)}
        if rec.mlflow_callback is not None:
            bursts["mlflow.dspy.autolog"] = burst(
                rec.mlflow, rec.mlflow_recorded, engine, burst_calls
            )
        if rec.mlflow_callback is not None:
            _disable_mlflow()
    return samples, bursts, rec.note


def _disable_mlflow() -> None:
    try:
        import mlflow
        import mlflow.dspy
    except ImportError:
        return
    mlflow.dspy.autolog(disable=True, silent=True)
    # traces are exported in the background; they must land before the temp dir goes
    mlflow.flush_trace_async_logging(terminate=True)


def table(samples: dict[str, list[float]]) -> str:
    """Medians, and ratios to the no-op floor: of the medians, and the median of the
    ratios within each repetition (paired: both ran within the same second, so a slow
    spell on the machine cancels out)."""
    floor = samples["no-op BaseCallback"]
    header = (
        f"{'configuration':<22} {'median µs/call':>15} {'min':>9} {'max':>9} "
        f"{'× no-op':>8} {'paired × no-op':>15}"
    )
    rows = [header, "-" * len(header)]
    for name, values in samples.items():
        median = statistics.median(values)
        paired = statistics.median(v / f for v, f in zip(values, floor, strict=True))
        rows.append(
            f"{name:<22} {median:>15.1f} {min(values):>9.1f} {max(values):>9.1f} "
            f"{median / statistics.median(floor):>8.3f} {paired:>15.3f}"
        )
    return "\n".join(rows)


# -- retrievals and embedding calls --------------------------------------------------------

_DIMENSIONS = 64
_CORPUS = [
    f"Passage {i}: notes on topic {i % 7}, item {i}, filed under shelf {i % 5}." for i in range(64)
]
_BATCH_WAIT = 0.005
RETRIEVAL_CONFIGS = ("without dspex", "patched, no trial", "dspex recording")


def hashed_embedding(texts: list[str]) -> Any:
    """A local embedding function: a hashed bag of words (crc32, so the same everywhere)."""
    import zlib

    import numpy as np

    rows = np.zeros((len(texts), _DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            rows[row, zlib.crc32(word.encode()) % _DIMENSIONS] += 1.0
    return rows


class _RetrievalRun:
    """The three configurations over one retriever and one embedder, built once."""

    def __init__(self) -> None:
        import dspy

        from dspex.capture import DspexCallback

        self.search = dspy.retrievers.Embeddings(
            corpus=_CORPUS, embedder=dspy.Embedder(hashed_embedding, caching=False), k=5
        )
        # Embeddings waits up to 0.1 s for other callers' queries to batch with; a
        # sequential caller always waits it out, which would make the run 20x longer
        self.search.search_fn.max_wait_time = _BATCH_WAIT
        self.embedder = dspy.Embedder(hashed_embedding, caching=False)
        self.callback = DspexCallback()
        self.recorders: list[Any] = []
        self.made = {"retrieval": 0, "embedding": 0}

    @contextmanager
    def config(self, name: str) -> Iterator[None]:
        import dspy

        from dspex.capture import instrumented, recording
        from dspex.capture.recorder import TrialRecorder
        from dspex.ids import new_id

        if name == "without dspex":
            with dspy.context(callbacks=[]):
                yield
            return
        with instrumented(), dspy.context(callbacks=[self.callback]):
            if name == "patched, no trial":
                yield
                return
            recorder = TrialRecorder(new_id("trl"))
            self.recorders.append(recorder)
            with recording(recorder):
                yield

    def recorded(self) -> dict[str, int]:
        counts = {"retrieval": 0, "embedding": 0}
        for recorder in self.recorders:
            for event in recorder.raw_events():
                if event.kind in counts:
                    counts[event.kind] += 1
        return counts

    def measure(self, name: str, what: str, calls: int) -> tuple[float, float]:
        """(CPU µs, wall µs) per call of ``what`` (``retrieval`` or ``embedding``)."""

        def call(i: int) -> Any:
            if what == "retrieval":
                return self.search(f"notes on topic {i % 7} item {i}")
            return self.embedder([f"notes on topic {i % 7} item {i}"])

        with self.config(name):
            call(-1)  # warm up
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(calls):
                call(i)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if name == "dspex recording":
            # a retrieval embeds its query: one retrieval and one embedding event per search
            self.made["retrieval"] += (calls + 1) if what == "retrieval" else 0
            self.made["embedding"] += calls + 1
        return cpu / calls * 1e6, wall / calls * 1e6


def retrieval_costs(calls: int, reps: int) -> dict[str, Any]:
    """Per-call samples (CPU and wall µs) of every configuration, and recorded vs made."""
    run = _RetrievalRun()
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        what: {name: [] for name in RETRIEVAL_CONFIGS} for what in ("retrieval", "embedding")
    }
    names = list(RETRIEVAL_CONFIGS)
    for rep in range(reps):
        for what in samples:
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                samples[what][name].append(run.measure(name, what, calls))
    return {"samples": samples, "made": dict(run.made), "recorded": run.recorded()}


def retrieval_table(costs: dict[str, Any]) -> str:
    """Medians per call, and what dspex adds to the same call without it (paired)."""
    header = (
        f"{'call':<10} {'configuration':<18} {'CPU µs':>8} {'added':>8} {'× without':>10} "
        f"{'wall µs':>8} {'added':>8}"
    )
    rows = [header, "-" * len(header)]
    for what, by_config in costs["samples"].items():
        floor = by_config["without dspex"]
        for name, values in by_config.items():
            cpu = statistics.median(v[0] for v in values)
            wall = statistics.median(v[1] for v in values)
            added_cpu = statistics.median(v[0] - f[0] for v, f in zip(values, floor, strict=True))
            added_wall = statistics.median(v[1] - f[1] for v, f in zip(values, floor, strict=True))
            ratio = cpu / statistics.median(f[0] for f in floor)
            rows.append(
                f"{what:<10} {name:<18} {cpu:>8.1f} {added_cpu:>+8.1f} {ratio:>10.3f} "
                f"{wall:>8.1f} {added_wall:>+8.1f}"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_capture", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="Predict calls per repetition")
    parser.add_argument("--reps", type=int, default=25, help="interleaved repetitions")
    parser.add_argument("--burst", type=int, default=10_000, help="calls in the 8-thread burst")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    parser.add_argument(
        "--retrievals",
        type=int,
        default=100,
        help="retrievals (and embedder calls) per "
        "repetition in the retrieval table; 0 leaves it out",
    )
    # called without argv (benchmarks/__main__ runs every module): the defaults
    args = parser.parse_args(argv or [])
    samples, bursts, note = run(args.calls, args.reps, args.burst, mlflow=not args.no_mlflow)
    print(f"Recording cost per dspy.Predict call ({args.calls} calls × {args.reps} reps, CPU time)")
    print(table(samples))
    if note:
        print(f"note: {note}")
    for name, b in bursts.items():
        print(
            f"burst, {name}: {b['calls']} calls from 8 threads in {b['seconds']:.1f}s, "
            f"{b['recorded']} recorded ({b['share']:.2%})"
        )
    if args.retrievals > 0:
        costs = retrieval_costs(args.retrievals, max(3, args.reps // 3))
        print(
            f"\nRecording cost per retrieval (Embeddings, k=5, 64 passages) and per "
            f"dspy.Embedder call (one text), local embedding function "
            f"({args.retrievals} calls × {max(3, args.reps // 3)} reps)"
        )
        print(retrieval_table(costs))
        made, recorded = costs["made"], costs["recorded"]
        print(
            f"recorded: {recorded['retrieval']} of {made['retrieval']} retrievals, "
            f"{recorded['embedding']} of {made['embedding']} embedding calls"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
