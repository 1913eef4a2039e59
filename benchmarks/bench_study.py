"""What running a study costs beyond its cells: scheduling overhead per cell, and how close
24 short cells on 2 cores come to (sum of cell times / cores).

* **Overhead per cell.** 24 near-empty cells (LabeledFewShot, 2 evaluation examples, no
  LM call in the compile), one at a time: the wall time after the workers are ready,
  minus the cells' own time in their worker, per cell. That is the runner's share: the
  study record saved after each event, the experiment's header written and sealed, the
  cell handed to a worker and its report back.
* **24 short cells on 2 cores.** SIMBA and MIPROv2 cells of about a second each on the
  offline LM, two at a time (the target: within 1.3x of the sum of the cells' times over
  2). Beside it, the floor: the same cells through ``concurrent.futures``'
  ProcessPoolExecutor, which does no bookkeeping at all.

The cells' time is what :func:`dspex.study.cell.run_cell` measured in its worker. The
ratio is given with the workers' start-up (a fresh Python importing DSPy) and without it.

    python -m benchmarks.bench_study          # DSPEX_BENCH_SCALE=0.34 or --quick: 8 cells
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dspex import ResultStore
from dspex.study import Study
from dspex.study.cell import CellReport, CellTask, run_cell
from dspex.study.engines import CellEvent, Engine, LocalEngine
from dspex.study.runner import StudyRunner

CELLS = 24
CORES = 2
TARGET = 1.3

EMPTY_ARM = {"optimizer": "dspy.LabeledFewShot", "options": {"k": 1}, "replicates": True}
SHORT_ARMS = {
    "simba": {
        "optimizer": "dspy.SIMBA",
        "options": {"bsize": 4, "num_candidates": 2, "max_steps": 2, "max_demos": 1,
                    "num_threads": 1},
    },
    "mipro": {
        "optimizer": "dspy.MIPROv2",
        "options": {"auto": "@none", "num_candidates": 2, "num_threads": 1, "verbose": False},
        "compile": {"num_trials": 3, "minibatch": False, "max_bootstrapped_demos": 1,
                    "max_labeled_demos": 1},
    },
}  # fmt: skip


def tiny_data() -> tuple[list[Any], list[Any]]:
    from dspex.offline import load_arith

    train, dev = load_arith()
    return train[:4], dev[:2]


def _scale() -> float:
    if "--quick" in sys.argv[1:]:
        return 0.34
    return float(os.environ.get("DSPEX_BENCH_SCALE", "1"))


def _spec(name: str, arms: dict[str, Any], seeds: int, data: str) -> dict[str, Any]:
    names = list(arms)
    return {
        "name": name,
        "hypothesis": "benchmark",
        "program": "dspex.offline:ArithQA",
        "data": data,
        "metric": "dspex.offline:exact_match",
        "lm": "dspex.offline:offline_lm",
        "seeds": list(range(seeds)),
        "arms": arms,
        **({"control": names[0], "treatment": names[1]} if len(names) == 2 else {}),
    }


@dataclass
class Timed(Engine):
    """An engine that notes when its workers were ready and what each cell took."""

    inner: Engine
    ready_at: float = 0.0
    seconds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.capacity = self.inner.capacity

    def start(self) -> None:
        self.inner.start()
        self.capacity = self.inner.capacity
        self.ready_at = time.perf_counter()

    def submit(self, task: CellTask) -> None:
        self.inner.submit(task)

    def poll(self, timeout: float) -> list[CellEvent]:
        events = self.inner.poll(timeout)
        self.seconds += [e.report.seconds for e in events if e.report is not None]
        return events

    def stop(self) -> list[CellEvent]:
        return self.inner.stop()

    @property
    def in_flight(self) -> int:
        return self.inner.in_flight


@dataclass(frozen=True)
class Measured:
    cells: int
    wall: float
    startup: float
    cell_seconds: float

    def ratio(self, cores: int, *, with_startup: bool = True) -> float:
        wall = self.wall if with_startup else self.wall - self.startup
        return wall / (self.cell_seconds / cores)


def _run(spec: dict[str, Any], engine: Engine, store_url: str) -> Measured:
    study = Study(spec)
    timed = Timed(engine)
    runner = StudyRunner(study.spec, ResultStore.open(store_url), engine=timed)
    started = time.perf_counter()
    record = runner.run()
    wall = time.perf_counter() - started
    assert record.status.value == "completed", record.status
    return Measured(len(record.cells), wall, timed.ready_at - started, sum(timed.seconds))


def _floor(spec: dict[str, Any], cores: int) -> Measured:
    """The same cells through a bare ProcessPoolExecutor: no record, no retries, nothing."""
    study = Study(spec)
    built = study.spec
    assert built.evaluation is not None
    tasks = [
        CellTask(
            study=built.name, hypothesis="", arm=arm, seed=seed, attempt=1,
            experiment_id=_new_id(), store_url=None, program=built.program, data=built.data,
            metric=built.metric, lm=built.lm, examples=built.evaluation.keys,
        )
        for seed in built.seeds
        for arm in built.arms
    ]  # fmt: skip
    started = time.perf_counter()
    with ProcessPoolExecutor(cores) as pool:
        ready = list(pool.map(_warm, range(cores)))
        ready_at = time.perf_counter()
        reports: list[CellReport] = list(pool.map(run_cell, tasks))
    wall = time.perf_counter() - started
    assert len(ready) == cores
    return Measured(len(tasks), wall, ready_at - started, sum(r.seconds for r in reports))


def _warm(_: int) -> bool:
    from dspex.study.engines import warm_up

    warm_up()
    return True


def _new_id() -> str:
    from dspex import new_id

    return new_id("exp")


def main() -> None:
    cells = max(4, round(CELLS * _scale()))
    seeds = cells // 2
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        empty = _spec("empty-cells", {"a": EMPTY_ARM}, cells, "benchmarks.bench_study:tiny_data")
        one = _run(empty, LocalEngine(1), url)
        inline_engine = _run({**empty, "name": "empty-inline"}, _inline(), url)
        short = _spec("short-cells", SHORT_ARMS, seeds, "dspex.offline:load_arith")
        local = _run(short, LocalEngine(CORES), url)
    floor = _floor({**short, "name": "short-floor"}, CORES)
    print(f"Scheduling overhead per cell ({cells} near-empty cells, one at a time):")
    print("| engine | workers ready | wall after start | cells' own time | overhead per cell |")
    print("|---|---|---|---|---|")
    for label, m in (("local (process)", one), ("inline (this process)", inline_engine)):
        overhead = (m.wall - m.startup - m.cell_seconds) / m.cells * 1000
        print(
            f"| {label} | {m.startup:.2f} s | {m.wall - m.startup:.2f} s | "
            f"{m.cell_seconds:.2f} s | {overhead:.0f} ms |"
        )
    print()
    print(f"{cells} short cells on {CORES} cores (target: wall within {TARGET}x of "
          f"sum of cell times / {CORES}):")  # fmt: skip
    print("| run | wall | workers ready | sum of cell times | x (sum/cores) | without start-up |")
    print("|---|---|---|---|---|---|")
    for label, m in (("dspex study, local engine", local), ("ProcessPoolExecutor floor", floor)):
        print(
            f"| {label} | {m.wall:.2f} s | {m.startup:.2f} s | {m.cell_seconds:.2f} s | "
            f"{m.ratio(CORES):.2f}x | {m.ratio(CORES, with_startup=False):.2f}x |"
        )
    verdict = "met" if local.ratio(CORES) <= TARGET else "NOT met"
    print(f"\ntarget {TARGET}x: {verdict} ({local.ratio(CORES):.2f}x with start-up)")


def _inline() -> Engine:
    from dspex.study.engines import InlineEngine

    return InlineEngine()


if __name__ == "__main__":
    main()
