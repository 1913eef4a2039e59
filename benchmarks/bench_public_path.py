"""What recording costs on the public path, archive to a file store included.

    python -m benchmarks.bench_public_path                 # defaults (~2 minutes on 2 cores)
    python -m benchmarks.bench_public_path --examples 300 --reps 7 --no-mlflow --no-openinference

Two tables, each against DSPy's own no-op ``BaseCallback`` (the floor any callback-based
recorder pays), with a zero-latency LM (cache off), one thread:

1. evaluating a ``Predict("question -> answer")`` program on ``--examples`` examples:
   ``dspy.Evaluate`` (floor); ``exp.evaluate`` in a ``dspex.experiment`` (harness pool of
   one thread), the experiment sealed in a file store; ``dspy.Evaluate`` inside a
   ``dspex.experiment`` (recorded as a trial), sealed likewise; ``dspy.Evaluate`` under
   OpenInference's ``DSPyInstrumentor`` (spans kept by OpenTelemetry's in-memory
   exporter: no export cost, a lower bound) and under ``mlflow.dspy.autolog()`` (traces
   in a sqlite tracking store, flushed);
2. ``--examples`` direct calls ``program(question=...)``: the floor; inside a
   ``dspex.experiment``, sealed in a file store; under OpenInference's instrumentor; under
   ``mlflow.dspy.autolog()``.

Each table also has a row for dspex's capture layer alone (its callback recording into
an in-memory ``TrialRecorder``; no experiment, journal, spool or store): what recording
these events costs before anything is written, the lower bound of the experiment rows.
Two more rows are an ablation: the experiment rows with the journal's event writes
dropped (each batch counted and let go; harness, trial records, archive and seal as
shipped), the lower bound of any design that moves writing events off the recording
thread.

After the two tables, a budget table: dspex's wall-time targets (``exp.evaluate`` with archive
at most 1.15x the floor, direct calls in an experiment at most 1.10x) as microseconds per
example or call above the floor, and how much of that budget each dspex row spends. Run
with ``--examples 1``, the same table gives each experiment's fixed cost (opening,
sealing and archiving it) in the rows' "above the floor".

``mlflow.dspy.autolog()`` and OpenInference's instrumentor patch DSPy for the life of
their process (MLflow's also grows the heap that later garbage collections walk), so each
tool's rows run in a process of their own, against a floor measured in that process.
Both are in the ``bench`` extra (``pip install 'dspex[bench]'``); a tool that is not
installed is left out with a note.

Wall time, since writing the record is part of the cost; each run starts from a collected
heap (see ``_timed``). Configurations run interleaved in a rotating order within each
repetition; the table gives medians and the median of
the per-repetition ratios to the floor (paired: a slow spell of the machine hits both).
Every dspex run is checked, after the timing, to have recorded as many LM calls as the LM
answered.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.bench_capture import ZeroLatencyEngine, zero_latency_lm

__all__ = ["main", "run"]

Run = Callable[[], None]
_ROOT = Path(__file__).resolve().parents[1]


class Setup:
    """The program, data, LM and stores every configuration shares."""

    def __init__(
        self, examples: int, tmp: str, *, mlflow: bool, openinference: bool = False
    ) -> None:
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
        self.openinference: Any = None
        if openinference:
            self.openinference, self.note = _openinference()
        self.unrecorded = 0
        self._to_check: list[tuple[str, int]] = []
        self._to_check_spans: list[tuple[int, int]] = []
        self._to_check_captured: list[tuple[int, int]] = []  # (recorded, made)

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
        for captured, made in self._to_check_captured:
            self.unrecorded += abs(made - captured)
        self._to_check_captured.clear()
        if self._to_check_spans:
            _, exporter = self.openinference
            spans = exporter.finished_llm_spans()
            made = sum(n for _, n in self._to_check_spans)
            self.unrecorded += abs(made - spans)
            self._to_check_spans.clear()
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

    @contextmanager
    def _capture_only(self) -> Iterator[None]:
        """dspex's capture layer alone, no experiment: its callback recording into one
        in-memory ``TrialRecorder`` (the six handlers, each call's payloads copied and its
        events appended), with no journal, spool, store or seal. What any design that
        records what dspex records pays before it writes anything: the lower bound of the
        experiment rows. (The LM calls' messages and responses are kept as DSPy handed
        them over; they become JSON data only when written.) Its LM calls are checked
        like theirs."""
        import dspy

        from dspex.capture import TrialRecorder, instrumented, recording, shared_callback
        from dspex.ids import new_id

        recorder = TrialRecorder(new_id("trl"))
        before = self.engine.calls
        with dspy.context(lm=self.lm, callbacks=[shared_callback()]):
            with instrumented(), recording(recorder):
                yield
        # counted now (a pass over a few events a call), so that the run's events are not
        # kept until check(): they would grow the heap every later row's collections walk
        captured = sum(1 for e in recorder.raw_events() if e.kind == "lm_call")
        self._to_check_captured.append((captured, self.engine.calls - before))

    @contextmanager
    def _events_not_written(self) -> Iterator[None]:
        """An ablation: the experiment rows with the spool's event writes dropped. Each
        batch of events the journal would serialize and write (to the spool, then the
        store) is counted and let go instead; everything else runs as shipped: the
        harness, the recorders, the trial and experiment records, the archive and the
        seal. What any design that moves writing events off the recording thread (a
        writer thread or process) leaves on it: the lower bound of such a design, as
        the capture-layer rows are of any design. Its LM calls are checked like the
        other rows': the ``lm_call`` events dropped against the LM's counter."""
        from dspex.journal.writer import ExperimentSpool

        flush = ExperimentSpool._flush_locked
        dropped = 0

        def drop(spool: ExperimentSpool, spooled: Any) -> None:
            nonlocal dropped
            if spooled.broken is not None or spooled.ended:
                return
            batch = spooled.recorder.raw_since(spooled.cursor)
            dropped += sum(1 for e in batch if e.kind == "lm_call")
            spooled.cursor += len(batch)
            if spooled.release:
                spooled.recorder.release(spooled.cursor)

        before = self.engine.calls
        ExperimentSpool._flush_locked = drop  # type: ignore[method-assign]
        try:
            yield
        finally:
            ExperimentSpool._flush_locked = flush  # type: ignore[method-assign]
        self._to_check_captured.append((dropped, self.engine.calls - before))

    def exp_evaluate_unwritten(self) -> None:
        import dspy

        import dspex

        with self._events_not_written(), dspy.context(lm=self.lm, callbacks=[]):
            with dspex.experiment("bench", store=self.store, pool_size=1) as run:
                run.evaluate(self.program, self.devset, self.metric)

    def evaluate_capture_only(self) -> None:
        import dspy

        with self._capture_only():
            dspy.Evaluate(devset=self.devset, metric=self.metric, num_threads=1)(self.program)

    @contextmanager
    def _mlflow_autolog(self) -> Iterator[Any]:
        """``mlflow.dspy.autolog()`` on for one run: its patch of ``dspy.Evaluate`` kept
        working with autolog on and its callback removed (the floor ran 8x slower)."""
        import dspy
        import mlflow
        import mlflow.dspy

        before = list(dspy.settings.callbacks)
        mlflow.dspy.autolog(silent=True)
        added = [c for c in dspy.settings.callbacks if c not in before]
        dspy.settings.configure(callbacks=before)
        try:
            yield added[0] if added else self.mlflow_callback
            mlflow.flush_trace_async_logging()
        finally:
            mlflow.dspy.autolog(disable=True, silent=True)

    def evaluate_mlflow(self) -> None:
        import dspy

        with self._mlflow_autolog() as callback:
            with dspy.context(lm=self.lm, callbacks=[callback], track_usage=True):
                dspy.Evaluate(devset=self.devset, metric=self.metric, num_threads=1)(self.program)

    @contextmanager
    def _openinference_on(self) -> Iterator[None]:
        """OpenInference's instrumentor on for one run (it wraps DSPy's classes while on);
        its LLM spans are checked against the LM's calls."""
        instrumentor, exporter = self.openinference
        before = self.engine.calls
        instrumentor.instrument(tracer_provider=exporter.provider)
        originals = _wrapped_originals(instrumentor)
        try:
            yield
        finally:
            instrumentor.uninstrument()
            for owner, name, original in originals:
                setattr(owner, name, original)
        self._to_check_spans.append((before, self.engine.calls - before))

    def evaluate_openinference(self) -> None:
        import dspy

        with self._openinference_on(), dspy.context(lm=self.lm, callbacks=[]):
            dspy.Evaluate(devset=self.devset, metric=self.metric, num_threads=1)(self.program)

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

    def calls_capture_only(self) -> None:
        with self._capture_only():
            self._calls()

    def calls_unwritten(self) -> None:
        import dspy

        import dspex

        with self._events_not_written(), dspy.context(lm=self.lm, callbacks=[]):
            with dspex.experiment("bench", store=self.store):
                self._calls()

    def calls_openinference(self) -> None:
        import dspy

        with self._openinference_on(), dspy.context(lm=self.lm, callbacks=[]):
            self._calls()

    def calls_mlflow(self) -> None:
        import dspy

        with self._mlflow_autolog() as callback:
            with dspy.context(lm=self.lm, callbacks=[callback], track_usage=True):
                self._calls()


def _mlflow(tmp: str) -> tuple[Any, str | None]:
    from benchmarks.bench_capture import _mlflow_callback

    callback, note = _mlflow_callback(tmp)
    if callback is not None:  # on only inside MLflow's own runs (Setup._mlflow_autolog)
        import mlflow.dspy

        mlflow.dspy.autolog(disable=True, silent=True)
    return callback, note


class _SpanSink:
    """OpenTelemetry's in-memory exporter behind a synchronous span processor: the spans
    are kept, not sent anywhere, so the row shows the instrumentor's own cost."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def finished_llm_spans(self) -> int:
        """LLM spans finished since the last call (one per LM call), then forgotten."""
        spans = self.exporter.get_finished_spans()
        self.exporter.clear()
        kind = "openinference.span.kind"
        return sum(1 for s in spans if (s.attributes or {}).get(kind) == "LLM")


def _openinference() -> tuple[Any, str | None]:
    try:
        from openinference.instrumentation.dspy import DSPyInstrumentor
    except ImportError:
        return None, "OpenInference not installed: pip install 'dspex[bench]'"
    return (DSPyInstrumentor(), _SpanSink()), None


def _wrapped_originals(instrumentor: Any) -> list[tuple[Any, str, Any]]:
    """(owner, name, what it held before) for each attribute the instrumentor wrapped.

    Its ``uninstrument`` restores the innermost ``__wrapped__`` of each, which strips
    DSPy's own ``with_callbacks`` decorator from ``Module.__call__``, ``LM.__call__``,
    ``Adapter.__call__`` and ``Tool.__call__``: every callback (dspex's included) would
    go unheard for the rest of the process."""
    found = []
    for module, path in getattr(instrumentor, "_originals", ()):
        owner: Any = importlib.import_module(module)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        wrapper = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name)
        original = getattr(wrapper, "__wrapped__", None)
        if original is not None:
            found.append((owner, name, original))
    return found


def _timed(fn: Run) -> float:
    """``fn``'s wall time, from a collected heap: a full collection that earlier rows made
    due (about 0.1 s; a few in a run) would otherwise land in whichever row comes next,
    and where it lands moved a row's ratio by up to 0.3 between runs. The row's own
    collections stay in its time."""
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


FLOORS = {"evaluation": "dspy.Evaluate, no-op callback", "direct calls": "calls, no-op callback"}
CAPTURE_ONLY = {
    "evaluation": "dspy.Evaluate, capture layer only",
    "direct calls": "calls, capture layer only",
}
"""The rows of dspex's capture layer alone (see ``Setup._capture_only``)."""
EVENTS_NOT_WRITTEN = {
    "evaluation": "exp.evaluate, events not written",
    "direct calls": "calls in experiment, events not written",
}
"""The ablation rows: an experiment with the spool's event writes dropped (see
``Setup._events_not_written``)."""
TARGETS = {"evaluation": 1.15, "direct calls": 1.10}
"""The wall-time targets of each table's experiment rows, as ratios to the floor."""


def _tables(setup: Setup, side: str) -> dict[str, dict[str, Run]]:
    if side == "openinference":
        return {
            "evaluation": {
                FLOORS["evaluation"]: setup.evaluate_floor,
                "dspy.Evaluate, OpenInference": setup.evaluate_openinference,
            },
            "direct calls": {
                FLOORS["direct calls"]: setup.calls_floor,
                "calls, OpenInference": setup.calls_openinference,
            },
        }
    if side == "mlflow":
        return {
            "evaluation": {
                FLOORS["evaluation"]: setup.evaluate_floor,
                "dspy.Evaluate, mlflow.dspy.autolog": setup.evaluate_mlflow,
            },
            "direct calls": {
                FLOORS["direct calls"]: setup.calls_floor,
                "calls, mlflow.dspy.autolog": setup.calls_mlflow,
            },
        }
    return {
        "evaluation": {
            FLOORS["evaluation"]: setup.evaluate_floor,
            "exp.evaluate + archive": setup.exp_evaluate,
            "dspy.Evaluate in experiment + archive": setup.evaluate_in_experiment,
            EVENTS_NOT_WRITTEN["evaluation"]: setup.exp_evaluate_unwritten,
            CAPTURE_ONLY["evaluation"]: setup.evaluate_capture_only,
        },
        "direct calls": {
            FLOORS["direct calls"]: setup.calls_floor,
            "calls in experiment + archive": setup.calls_in_experiment,
            EVENTS_NOT_WRITTEN["direct calls"]: setup.calls_unwritten,
            CAPTURE_ONLY["direct calls"]: setup.calls_capture_only,
        },
    }


Samples = dict[str, dict[str, list[float]]]


def run(examples: int, reps: int, *, side: str = "dspex") -> tuple[Samples, Setup]:
    """Samples (seconds) per configuration of both tables, for one side: ``dspex`` (the
    floor and dspex's configurations), ``openinference`` or ``mlflow`` (the floor and that
    tool's)."""
    with tempfile.TemporaryDirectory(prefix="dspex-bench-") as tmp:
        setup = Setup(examples, tmp, mlflow=side == "mlflow", openinference=side == "openinference")
        if side == "mlflow" and setup.mlflow_callback is None:
            return {}, setup
        if side == "openinference" and setup.openinference is None:
            return {}, setup
        tables = _tables(setup, side)
        samples: Samples = {t: {n: [] for n in c} for t, c in tables.items()}
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


def _tool_side(side: str, examples: int, reps: int) -> tuple[Samples, int | None, str | None]:
    """One tool's configurations (``mlflow``, ``openinference``), with a floor of their
    own, in another process: samples, LM calls it left unrecorded, and a note.

    ``mlflow.dspy.autolog()`` patches DSPy for the life of the process (``dspy.Evaluate``
    became 8x slower with its callback removed), and the traces it keeps grow the heap
    that every later configuration's garbage collections walk: in one process, it slowed
    the floor and dspex's configurations measured after it. OpenInference's instrumentor
    wraps DSPy's classes (``wrapt``) and is kept apart likewise.
    """
    command = [sys.executable, "-m", "benchmarks.bench_public_path", "--side", side]
    command += ["--examples", str(examples), "--reps", str(reps)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=_ROOT)
    if done.returncode != 0:
        return {}, None, f"{side}'s side failed: {done.stderr.strip()[-500:]}"
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["samples"], answer["unrecorded"], answer["note"]


def table(
    samples: dict[str, list[float]],
    per: int,
    unit: str,
    floor_name: str,
    floors: dict[str, list[float]] | None = None,
) -> str:
    """A row per configuration: its median, and its ratios to the floor measured beside it
    (``floors``: configuration name -> that floor's samples, when it is not ``floor_name``)."""
    header = f"{'configuration':<40} {'median ' + unit:>16} {'× floor':>8} {'paired × floor':>15}"
    rows = [header, "-" * len(header)]
    for name, values in samples.items():
        floor = (floors or {}).get(name, samples[floor_name])
        median = statistics.median(values)
        paired = statistics.median(v / f for v, f in zip(values, floor, strict=True))
        rows.append(
            f"{name:<40} {median / per * 1e6:>16.1f} "
            f"{median / statistics.median(floor):>8.3f} {paired:>15.3f}"
        )
    return "\n".join(rows)


def budget(
    samples: dict[str, list[float]], per: int, unit: str, floor_name: str, target: float
) -> str:
    """What the ``target`` ratio allows above the floor, per example or call, and the share
    of it each configuration spends: its median minus the floor's, over the allowance. A
    share above 1 is a configuration over the target; a lower-bound row (the capture layer
    alone, the events not written) over 1 is a target no design above that row can meet.

        >>> text = budget({"floor": [1.0], "row": [1.3]}, 1, "µs", "floor", 1.2)
        >>> text.splitlines()[0]
        'target 1.20x the floor: 200000.0 µs above it'
        >>> text.splitlines()[-1].split()  # 0.3 s above the floor, of 0.2 s allowed
        ['row', '300000.0', '1.500']
    """
    floor = statistics.median(samples[floor_name])
    allowed = (target - 1) * floor / per * 1e6
    header = f"{'configuration':<40} {unit + ' above floor':>19} {'share of budget':>16}"
    rows = [f"target {target:.2f}x the floor: {allowed:.1f} {unit} above it", header]
    rows.append("-" * len(header))
    for name, values in samples.items():
        if name == floor_name:
            continue
        above = (statistics.median(values) - floor) / per * 1e6
        rows.append(f"{name:<40} {above:>19.1f} {above / allowed:>16.3f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_public_path", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="examples (and direct calls)")
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    parser.add_argument("--no-openinference", action="store_true", help="leave OpenInference out")
    parser.add_argument(
        "--side", choices=("dspex", "mlflow", "openinference"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv or [])
    if args.side in ("mlflow", "openinference"):  # the child process of _tool_side
        samples, setup = run(args.examples, args.reps, side=args.side)
        checked = args.side == "openinference"  # MLflow's traces are not counted
        answer = {
            "samples": samples,
            "unrecorded": setup.unrecorded if checked else None,
            "note": setup.note,
        }
        print(json.dumps(answer))
        return
    samples, setup = run(args.examples, args.reps)
    notes: list[str] = []
    tools: dict[str, Samples] = {}
    unrecorded: dict[str, int | None] = {}
    for side, left_out, name in (
        ("openinference", args.no_openinference, "OpenInference"),
        ("mlflow", args.no_mlflow, "MLflow"),
    ):
        if left_out:
            notes.append(f"{name} left out")
            continue
        tools[side], unrecorded[name], tool_note = _tool_side(side, args.examples, args.reps)
        if tool_note:
            notes.append(tool_note)
    _report(samples, tools, args.examples, args.reps)
    print(f"LM calls made but not recorded by dspex: {setup.unrecorded}")
    for name, count in unrecorded.items():
        if count is not None:
            print(f"LM calls made but without an LLM span, {name}: {count}")
    if any(tools.values()):
        print("Each tool's rows ran in a process of their own, against a floor measured there.")
    for note in notes:
        print(f"note: {note}")


def _report(samples: Samples, tools: dict[str, Samples], n: int, reps: int) -> None:
    """Both tables: dspex's rows, then each tool's against the floor of its own process."""
    for table_name, title, unit in (
        ("evaluation", f"Evaluating {n} examples", "µs/example"),
        ("direct calls", f"{n} direct Predict calls", "µs/call"),
    ):
        rows = dict(samples[table_name])
        floors: dict[str, list[float]] = {}
        for tool in tools.values():
            for name, values in tool.get(table_name, {}).items():
                if name != FLOORS[table_name]:
                    rows[name] = values
                    floors[name] = tool[table_name][FLOORS[table_name]]
        print(f"{title}, one thread, wall time ({reps} reps)")
        print(table(rows, n, unit, FLOORS[table_name], floors))
        print()
    for table_name, title, unit in (
        ("evaluation", "Evaluation", "µs/example"),
        ("direct calls", "Direct calls", "µs/call"),
    ):
        print(f"{title}: dspex's rows against the target's budget")
        print(budget(samples[table_name], n, unit, FLOORS[table_name], TARGETS[table_name]))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
