"""What recording costs on the public path, archive to a file store included.

    python -m benchmarks.bench_public_path                 # defaults (~2 minutes on 2 cores)
    python -m benchmarks.bench_public_path --examples 300 --reps 7 --no-mlflow

Two tables, each against DSPy's own no-op ``BaseCallback`` (the floor any callback-based
recorder pays), with a zero-latency LM (cache off), one thread:

1. evaluating a ``Predict("question -> answer")`` program on ``--examples`` examples:
   ``dspy.Evaluate`` (floor); ``exp.evaluate`` in a ``dspex.experiment`` (harness pool of
   one thread), the experiment sealed in a file store; ``dspy.Evaluate`` inside a
   ``dspex.experiment`` (recorded as a trial), sealed likewise; ``dspy.Evaluate`` under
   ``mlflow.dspy.autolog()`` (traces in a sqlite tracking store, flushed);
2. ``--examples`` direct calls ``program(question=...)``: the floor; inside a
   ``dspex.experiment``, sealed in a file store; under ``mlflow.dspy.autolog()``.

Wall time, since writing the record is part of the cost. Configurations run interleaved
in a rotating order within each repetition; the table gives medians and the median of
the per-repetition ratios to the floor (paired: a slow spell of the machine hits both).
Every dspex run is checked, after the timing, to have recorded as many LM calls as the LM
answered.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchmarks.bench_capture import ZeroLatencyEngine, zero_latency_lm

__all__ = ["main", "run"]

Run = Callable[[], None]


class Setup:
    """The program, data, LM and stores every configuration shares."""

    def __init__(self, examples: int, tmp: str, *, mlflow: bool) -> None:
        import dspy
        from dspy.utils.callback import BaseCallback

        import dspex

        self.engine = ZeroLatencyEngine()
        self.lm = zero_latency_lm(self.engine)
        self.noop = BaseCallback()
        self.program = dspy.Predict("question -> answer")
        self.devset = [
            dspy.Example(question=f"What is {i} + 2?", answer="4").with_inputs("question")
            for i in range(examples)
        ]
        self.store = dspex.ResultStore.open(f"file://{tmp}/store")
        self.mlflow_callback, self.note = _mlflow(tmp) if mlflow else (None, "MLflow left out")
        self.unrecorded = 0
        self._to_check: list[tuple[str, int]] = []

    def metric(self, example: Any, prediction: Any, trace: Any = None) -> bool:
        return bool(example.answer == prediction.answer)

    def _checked(self, experiment_id: str, made_before: int) -> None:
        """Remember what a run made, to be checked by :meth:`check` outside the timing."""
        self._to_check.append((experiment_id, self.engine.calls - made_before))

    def check(self) -> int:
        """LM calls made but not recorded (or recorded but not made) by the runs so far."""
        for experiment_id, made in self._to_check:
            archived = self.store.get_experiment(experiment_id)
            recorded = sum(1 for t in archived.trials for e in t.events if e.kind == "lm_call")
            self.unrecorded += abs(made - recorded)
        self._to_check.clear()
        return self.unrecorded

    # -- evaluation ---------------------------------------------------------------------

    def evaluate_floor(self) -> None:
        import dspy

        with dspy.context(lm=self.lm, callbacks=[self.noop]):
            dspy.Evaluate(devset=self.devset, metric=self.metric, num_threads=1)(self.program)

    def exp_evaluate(self) -> None:
        import dspy

        import dspex

        before = self.engine.calls
        with dspy.context(lm=self.lm, callbacks=[]):  # dspex's callback instead of the no-op
            with dspex.experiment("bench", store=self.store, pool_size=1) as run:
                run.evaluate(self.program, self.devset, self.metric)
        self._checked(run.id, before)

    def evaluate_in_experiment(self) -> None:
        import dspy

        import dspex

        before = self.engine.calls
        with dspy.context(lm=self.lm, callbacks=[]):  # dspex's callback instead of the no-op
            with dspex.experiment("bench", store=self.store) as run:
                dspy.Evaluate(devset=self.devset, metric=self.metric, num_threads=1)(self.program)
        self._checked(run.id, before)

    def evaluate_mlflow(self) -> None:
        import dspy
        import mlflow

        with dspy.context(lm=self.lm, callbacks=[self.mlflow_callback], track_usage=True):
            dspy.Evaluate(devset=self.devset, metric=self.metric, num_threads=1)(self.program)
        mlflow.flush_trace_async_logging()

    # -- direct calls -------------------------------------------------------------------

    def _calls(self) -> None:
        for example in self.devset:
            self.program(question=example.question)

    def calls_floor(self) -> None:
        import dspy

        with dspy.context(lm=self.lm, callbacks=[self.noop]):
            self._calls()

    def calls_in_experiment(self) -> None:
        import dspy

        import dspex

        before = self.engine.calls
        with dspy.context(lm=self.lm, callbacks=[]):  # dspex's callback instead of the no-op
            with dspex.experiment("bench", store=self.store) as run:
                self._calls()
        self._checked(run.id, before)

    def calls_mlflow(self) -> None:
        import dspy
        import mlflow

        with dspy.context(lm=self.lm, callbacks=[self.mlflow_callback], track_usage=True):
            self._calls()
        mlflow.flush_trace_async_logging()


def _mlflow(tmp: str) -> tuple[Any, str | None]:
    from benchmarks.bench_capture import _mlflow_callback

    return _mlflow_callback(tmp)


def _timed(fn: Run) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(examples: int, reps: int, *, mlflow: bool = True) -> tuple[dict[str, Any], Setup]:
    """Samples (seconds) per configuration of both tables."""
    with tempfile.TemporaryDirectory(prefix="dspex-bench-") as tmp:
        setup = Setup(examples, tmp, mlflow=mlflow)
        tables: dict[str, dict[str, Run]] = {
            "evaluation": {
                "dspy.Evaluate, no-op callback": setup.evaluate_floor,
                "exp.evaluate + archive": setup.exp_evaluate,
                "dspy.Evaluate in experiment + archive": setup.evaluate_in_experiment,
            },
            "direct calls": {
                "calls, no-op callback": setup.calls_floor,
                "calls in experiment + archive": setup.calls_in_experiment,
            },
        }
        if setup.mlflow_callback is not None:
            tables["evaluation"]["dspy.Evaluate, mlflow.dspy.autolog"] = setup.evaluate_mlflow
            tables["direct calls"]["calls, mlflow.dspy.autolog"] = setup.calls_mlflow
        samples: dict[str, dict[str, list[float]]] = {
            t: {n: [] for n in c} for t, c in tables.items()
        }
        for configs in tables.values():  # warm up every path once
            for fn in configs.values():
                fn()
        setup.check()  # the warm-up runs are checked too
        for rep in range(reps):
            for table_name, configs in tables.items():
                names = list(configs)
                for name in names[rep % len(names) :] + names[: rep % len(names)]:
                    samples[table_name][name].append(_timed(configs[name]))
        setup.check()
        if setup.mlflow_callback is not None:
            from benchmarks.bench_capture import _disable_mlflow

            _disable_mlflow()
        setup.store.close()
    return samples, setup


def table(samples: dict[str, list[float]], per: int, unit: str) -> str:
    names = list(samples)
    floor = samples[names[0]]
    header = f"{'configuration':<40} {'median ' + unit:>16} {'× floor':>8} {'paired × floor':>15}"
    rows = [header, "-" * len(header)]
    for name in names:
        values = samples[name]
        median = statistics.median(values)
        paired = statistics.median(v / f for v, f in zip(values, floor, strict=True))
        rows.append(
            f"{name:<40} {median / per * 1e6:>16.1f} "
            f"{median / statistics.median(floor):>8.3f} {paired:>15.3f}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_public_path", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="examples (and direct calls)")
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    args = parser.parse_args(argv or [])
    samples, setup = run(args.examples, args.reps, mlflow=not args.no_mlflow)
    n = args.examples
    print(f"Evaluating {n} examples, one thread, wall time ({args.reps} reps)")
    print(table(samples["evaluation"], n, "µs/example"))
    print()
    print(f"{n} direct Predict calls, one thread, wall time ({args.reps} reps)")
    print(table(samples["direct calls"], n, "µs/call"))
    print(f"LM calls made but not recorded by dspex: {setup.unrecorded}")
    if setup.note:
        print(f"note: {setup.note}")


if __name__ == "__main__":
    main(sys.argv[1:])
