"""Throughput of the worker pools on a DSPy evaluation whose LM takes 20 ms per call.

Each example runs ``dspy.Predict("question -> answer")`` once against an LM whose custom
engine sleeps 20 ms, so a pool of ``n`` workers can at best finish
``500 × 20 ms / n``. The table shows what each adapter achieves at 1, 4 and 16 workers
and its overhead: the measured time minus that ideal, per example (wall clock) and per
example on its worker. ``DSPEX_BENCH_SCALE=0.2`` runs 100 examples instead of 500.

    python -m benchmarks.bench_workers
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

LM_DELAY = 0.020
EXAMPLES = 500
SIZES = (1, 4, 16)
ANSWER = "[[ ## answer ## ]]\n42\n\n[[ ## completed ## ]]"


class SleepEngine:
    """A DSPy engine that answers every request after ``delay`` seconds."""

    def __init__(self, delay: float = LM_DELAY):
        self.delay = delay

    def complete(self, request: Any) -> Any:
        from dspy.lm15 import Message, Response, TextPart, Usage

        time.sleep(self.delay)
        return Response(
            id=None,
            model="sleepy/x",
            message=Message.assistant([TextPart(ANSWER)]),
            finish_reason="stop",
            usage=Usage(input_tokens=20, output_tokens=8, total_tokens=28),
        )

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


class AsyncSleepEngine:
    def __init__(self, sync: SleepEngine):
        self.sync = sync

    async def complete(self, request: Any) -> Any:
        return self.sync.complete(request)

    async def stream(self, request: Any) -> Any:
        for event in self.sync.stream(request):
            yield event

    async def aclose(self) -> None:
        pass


_worker = threading.local()  # one LM and program per worker (thread or process)


def setup_worker(delay: float) -> None:
    """The pool initializer: build the LM and the program, and warm them up once."""
    import dspy

    engine = SleepEngine(delay)
    asynchronous = AsyncSleepEngine(engine)
    _worker.lm = dspy.LM("sleepy/x", engine=engine, async_engine=asynchronous, cache=False)
    _worker.program = dspy.Predict("question -> answer")
    answer_question("warm-up")


def answer_question(question: str) -> str:
    import dspy

    with dspy.context(lm=_worker.lm):
        return _worker.program(question=question).answer


@dataclass
class Row:
    adapter: str
    size: int
    examples: int
    startup: float
    elapsed: float
    failed: int

    @property
    def ideal(self) -> float:
        return self.examples * LM_DELAY / self.size

    def cells(self) -> list[str]:
        overhead = self.elapsed - self.ideal
        return [
            self.adapter,
            str(self.size),
            f"{self.startup:.2f}",
            f"{self.elapsed:.2f}",
            f"{self.ideal:.2f}",
            f"{self.examples / self.elapsed:.1f}",
            f"{self.ideal / self.elapsed:.0%}",
            f"{overhead / self.examples * 1000:.2f}",
            f"{self.elapsed * self.size / self.examples * 1000 - LM_DELAY * 1000:.2f}",
            str(self.failed),
        ]


HEADERS = [
    "adapter",
    "workers",
    "startup s",
    "run s",
    "ideal s",
    "examples/s",
    "of ideal",
    "overhead ms/ex",
    "worker ms/ex",
    "failed",
]


def measure(adapter: str, size: int, questions: list[str]) -> Row:
    from dspex.config.schema import WorkersSettings
    from dspex.workers import create_pool

    settings = WorkersSettings(
        adapter="thread" if adapter == "inline" else adapter,
        pooling_enabled=adapter != "inline",
        pool_size=size,
        pool_startup_timeout=300,
        worker_init_timeout=300,
        task_timeout=60,
    )
    # Ship the functions of the importable module, so that they pickle by reference even
    # when this file runs as __main__ (a module-level threading.local cannot be pickled).
    from benchmarks import bench_workers as module

    pool = create_pool(settings, initializer=module.setup_worker, initargs=(LM_DELAY,))
    started = time.perf_counter()
    pool.start()
    ready = time.perf_counter()
    try:
        outcomes = list(pool.map(module.answer_question, questions))
        elapsed = time.perf_counter() - ready
    finally:
        pool.shutdown()
    failed = sum(not o.ok or o.value != "42" for o in outcomes)
    return Row(adapter, size, len(questions), ready - started, elapsed, failed)


def render(rows: list[Row]) -> str:
    table = [HEADERS] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def experiment_seconds(adapter: str, size: int, *, reuse: bool, evaluations: int = 10) -> float:
    """Wall time of an experiment of ``evaluations`` ``exp.evaluate`` calls (16 examples
    each, the 20 ms LM) on ``size`` workers: with the harness's one pool per experiment
    (``reuse``), or with a new pool per evaluation (the harness's pool closed after each
    one, as it was before pools lived as long as the experiment)."""
    import cloudpickle
    import dspy

    import dspex
    from benchmarks import bench_workers as module

    cloudpickle.register_pickle_by_value(module)  # workers in other processes get the engine
    engine = module.SleepEngine(LM_DELAY)
    lm = dspy.LM(
        "sleepy/x", engine=engine, async_engine=module.AsyncSleepEngine(engine), cache=False
    )
    devset = [
        dspy.Example(question=f"What is 6 x 7? (#{i})", answer="42").with_inputs("question")
        for i in range(16)
    ]

    def metric(example: Any, prediction: Any, trace: Any = None) -> bool:
        return bool(prediction.answer == example.answer)

    overrides = {
        "workers": {
            "adapter": adapter,
            "pool_startup_timeout": 300,
            "worker_init_timeout": 300,
            "task_timeout": 60,
        }
    }
    with dspex.config.overrides(**overrides), dspy.context(lm=lm):
        started = time.perf_counter()
        store = dspex.ResultStore.open("memory://")
        with dspex.experiment("pools", store=store, pool_size=size) as exp:
            for _ in range(evaluations):
                trial = exp.evaluate(dspy.Predict("question -> answer"), devset, metric)
                assert trial.score == 1.0, trial.score
                if not reuse:
                    exp.harness.close()
        return time.perf_counter() - started


def render_reuse(rows: list[tuple[str, int, float, float]]) -> str:
    lines = [
        "adapter | workers | pool per evaluation s | one pool per experiment s | saved s",
        "--------+---------+-----------------------+---------------------------+--------",
    ]
    for adapter, size, fresh, reused in rows:
        lines.append(
            f"{adapter:>7} | {size:>7} | {fresh:>21.1f} | {reused:>25.1f} | {fresh - reused:>6.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    scale = float(os.environ.get("DSPEX_BENCH_SCALE", "1"))
    count = max(16, int(EXAMPLES * scale))
    questions = [f"What is 6 x 7? (#{i})" for i in range(count)]
    from dspex.workers.ray_pool import ensure_ray

    ray = ensure_ray(None)
    rows = [measure("inline", 1, questions)]
    reuse = []
    try:
        for adapter in ("thread", "process", "ray"):
            for size in SIZES:
                rows.append(measure(adapter, size, questions))
        for adapter in ("process", "ray"):
            fresh = experiment_seconds(adapter, 16, reuse=False)
            reused = experiment_seconds(adapter, 16, reuse=True)
            reuse.append((adapter, 16, fresh, reused))
    finally:
        ray.shutdown()
    print(
        f"Worker pools: {count} examples, dspy.Predict per example, LM engine sleeps "
        f"{LM_DELAY * 1000:.0f} ms per call; {os.cpu_count()} CPUs.\n"
        "ideal = examples x 20 ms / workers; overhead ms/ex = (run - ideal) / examples; "
        "worker ms/ex = time each example holds a worker beyond the 20 ms LM call.\n"
        "startup (not in run s) includes each worker's initializer: build the LM, one warm-up call."
    )
    print(render(rows))
    print()
    print(
        "An experiment of 10 exp.evaluate calls (16 examples each) on 16 workers: "
        "what keeping one pool for the experiment saves"
    )
    print(render_reuse(reuse))


if __name__ == "__main__":
    main()
