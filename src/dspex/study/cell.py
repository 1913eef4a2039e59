"""One cell of a study: an arm at a seed, run in a worker as one ordinary dspex experiment.

:func:`run_cell` is what a worker runs (a process of the local engine, a Ray task). It
imports the study's callables there, builds the LM with the worker's environment (API
keys never travel), and records ``dspex.experiment`` exactly as a user would: the
baseline program evaluated on the evaluation set, the optimizer's compile, the optimized
program evaluated on the same set. The experiment is linked to its study by its
metadata (``study``: name, arm, seed, attempt) and the tag ``study:<name>``.

:func:`cell_result_of` reads what a sealed cell measured from its experiment; the worker
and a runner adopting a cell sealed by a run that died both use it.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dspex.errors import StudyError
from dspex.model import EventKind, Experiment, Trial, example_key, scope_of
from dspex.model.payloads import payload_of
from dspex.model.scopes import example_value
from dspex.model.study import CellResult
from dspex.store import ResultStore
from dspex.study._imports import Ref, describe, extend_path, resolve
from dspex.study.seeding import compile_parameters, constructor_parameters, seed_arguments
from dspex.study.spec import ArmSpec, split_data
from dspex.tracking import experiment as record_experiment

__all__ = [
    "BASELINE",
    "OPTIMIZED",
    "CellReport",
    "CellTask",
    "cell_result_of",
    "lm_usage",
    "optimizer_arguments",
    "run_cell",
    "study_tag",
]

BASELINE = "baseline"
OPTIMIZED = "optimized"


def study_tag(study: str) -> str:
    """The tag of every cell experiment of ``study`` (``dspex experiments ls --tag``)."""
    return f"study:{study}"


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs to run one cell (travels with cloudpickle)."""

    study: str
    hypothesis: str
    arm: ArmSpec
    seed: int
    attempt: int
    experiment_id: str
    store_url: str | None  # None: record into a private memory store and send it back
    program: Ref
    data: Ref
    metric: Ref
    lm: Ref
    examples: tuple[str, ...]
    threads: int = 1
    paths: tuple[str, ...] = ()
    quiet: bool = True

    @property
    def key(self) -> tuple[str, int]:
        return (self.arm.name, self.seed)


@dataclass(frozen=True)
class CellReport:
    """What a worker sends back: the cell's result, where it ran, and (for a memory
    store) the sealed experiment's JSON."""

    key: tuple[str, int]
    attempt: int
    result: CellResult
    host: str
    pid: int
    record: bytes | None = None
    seconds: float = 0.0
    """How long :func:`run_cell` took in the worker (imports, data, LM, the experiment)."""


def run_cell(task: CellTask) -> CellReport:
    """Run one cell in this process and return what it measured (see the module docs)."""
    started = time.perf_counter()
    extend_path(task.paths)
    with _quiet(task.quiet):
        experiment = _record(task)
    record = experiment.to_json_bytes() if task.store_url is None else None
    result = cell_result_of(experiment, task.examples)
    return CellReport(
        key=task.key,
        attempt=task.attempt,
        result=result,
        host=socket.gethostname(),
        pid=os.getpid(),
        record=record,
        seconds=time.perf_counter() - started,
    )


def _record(task: CellTask) -> Experiment:
    import dspy
    import numpy

    program = resolve(task.program)()
    trainset, valset, evalset = split_data(resolve(task.arm.data or task.data)())
    metric = resolve(task.metric)
    arm_metric = resolve(task.arm.metric) if task.arm.metric is not None else metric
    lm = resolve(task.lm)()  # here, in the worker: its environment holds the API keys
    optimizer_class = resolve(task.arm.optimizer)
    init, compile_kwargs = optimizer_arguments(
        task.arm,
        optimizer_class,
        task.seed,
        lm=lm,
        metric=arm_metric,
        trainset=trainset,
        valset=valset,
    )
    store = ResultStore.open(task.store_url or "memory://")
    random.seed(task.seed)
    numpy.random.seed(task.seed % 2**32)
    try:
        with dspy.context(lm=lm):
            optimizer = optimizer_class(**init)
            with record_experiment(
                f"{task.study}: {task.arm.name} seed {task.seed}",
                hypothesis=f"{task.arm.name} ({describe(task.arm.optimizer)}) improves on the "
                "baseline program",
                program=program,
                store=store,
                tags=[study_tag(task.study), f"arm:{task.arm.name}"],
                metadata={
                    "study": {
                        "name": task.study,
                        "arm": task.arm.name,
                        "seed": task.seed,
                        "attempt": task.attempt,
                    }
                },
                pool_size=task.threads,
                experiment_id=task.experiment_id,
            ) as run:
                run.evaluate(program, evalset, metric, name=BASELINE)
                optimized = optimizer.compile(program, **compile_kwargs)
                run.evaluate(optimized, evalset, metric, name=OPTIMIZED)
    finally:
        store.close()
    return run.experiment


def optimizer_arguments(
    arm: ArmSpec,
    optimizer_class: type,
    seed: int,
    *,
    lm: Any,
    metric: Any,
    trainset: list[Any],
    valset: list[Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The constructor and compile keyword arguments of ``arm`` at ``seed``.

    The study passes the metric, the training (and validation) set and the seed; option
    values ``"@lm"``, ``"@metric"`` and ``"@none"`` become the cell's LM, the arm's metric
    and None (which TOML cannot write).
    """
    references = {"@lm": lm, "@metric": metric, "@none": None}
    init = {k: references.get(v, v) if isinstance(v, str) else v for k, v in arm.options.items()}
    compile_kwargs = {
        k: references.get(v, v) if isinstance(v, str) else v for k, v in arm.compile.items()
    }
    init_seed, compile_seed = seed_arguments(arm.seeding, seed, arm.options)
    init.update(init_seed)
    compile_kwargs.update(compile_seed)
    accepted = constructor_parameters(optimizer_class)
    if "metric" in accepted:
        init["metric"] = metric
    if "trainset" in accepted:  # KNNFewShot takes its training set when it is made
        init["trainset"] = trainset
    else:
        compile_kwargs["trainset"] = trainset
    if valset is not None and "valset" in compile_parameters(optimizer_class):
        compile_kwargs["valset"] = valset
    return init, compile_kwargs


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Keep what DSPy prints (progress bars, the random search's chatter) and the warnings
    of the optimizers' libraries (optuna's experimental features) off the terminal that
    shows the study's progress, and out of the cell's way: under a warnings-as-errors
    filter a library's warning would fail the cell."""
    if not quiet:
        yield
        return
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield


# -- what a sealed cell measured -----------------------------------------------------------


def cell_result_of(experiment: Experiment, examples: Sequence[str]) -> CellResult:
    """The result of a cell from its sealed experiment; values in ``examples`` order."""
    evaluations = [t for t in experiment.trials if t.metadata.get("role") == "evaluation"]
    baseline = next((t for t in evaluations if t.name == BASELINE), None)
    final = next((t for t in reversed(evaluations) if t.name == OPTIMIZED), None)
    if final is None:
        raise StudyError(
            f"experiment {experiment.id} has no evaluation named {OPTIMIZED!r}: it is not a "
            "study cell that finished"
        )
    calls, tokens, cost = lm_usage(experiment.trials)
    started = experiment.started_at or experiment.created_at
    ended = experiment.completed_at or started
    label, curve = _curve(experiment)
    return CellResult(
        experiment_id=experiment.id,
        score=final.score,
        baseline_score=baseline.score if baseline is not None else None,
        values=_aligned(final, examples, experiment.id),
        baseline_values=_aligned(baseline, examples, experiment.id) if baseline else (),
        lm_calls=calls,
        tokens=tokens,
        cost=cost,
        wall_s=max(0.0, (ended - started).total_seconds()),
        trials=len(experiment.trials),
        curve_scope=label,
        curve=curve,
    )


def _aligned(trial: Trial, examples: Sequence[str], experiment_id: str) -> tuple[float, ...]:
    """The trial's value per example, in the order of the study's evaluation keys."""
    scope = scope_of(trial)
    metric = scope.metric if scope is not None else ""
    by_key: dict[str, list[float]] = {}
    for result in sorted(trial.example_results, key=lambda r: r.index):
        key = example_key(result.inputs, result.labels)
        by_key.setdefault(key, []).append(example_value(result, metric))
    values = []
    for key in examples:
        found = by_key.get(key)
        if not found:
            raise StudyError(
                f"experiment {experiment_id}'s {trial.name!r} evaluation has no result for "
                f"example {key} of the study's evaluation set: the data changed under the study"
            )
        values.append(found.pop(0))
    return tuple(values)


def lm_usage(trials: Sequence[Trial]) -> tuple[int, int, float | None]:
    """(LM calls, their tokens, cost) recorded in ``trials``: the cost of the LM calls and of
    the embedding calls (a hosted embedder's requests are part of an arm's cost); None
    when no call had one."""
    calls = tokens = 0
    cost = 0.0
    priced = False
    for trial in trials:
        for event in trial.events:
            payload = payload_of(event, EventKind.LM_CALL)
            if payload is None:
                embedded = payload_of(event, EventKind.EMBEDDING)
                price = embedded["cost"] if embedded is not None else None
                if isinstance(price, int | float) and math.isfinite(price):
                    cost += float(price)
                    priced = True
                continue
            calls += 1
            total = (payload["usage"] or {}).get("total_tokens")
            tokens += int(total) if isinstance(total, int | float) else 0
            price = payload["cost"]
            if isinstance(price, int | float) and math.isfinite(price):
                cost += float(price)
                priced = True
    return calls, tokens, (cost if priced else None)


def _curve(experiment: Experiment) -> tuple[str, tuple[tuple[float, float], ...]]:
    """The optimizer's best score so far, over the example set most of its trials were
    scored on, against seconds since the cell started."""
    groups: dict[str, list[Trial]] = {}
    labels: dict[str, tuple[str, int]] = {}
    for trial in experiment.trials:
        if trial.metadata.get("role") == "evaluation" or trial.score is None:
            continue
        if not math.isfinite(trial.score) or trial.finished_at is None:
            continue
        scope = scope_of(trial)
        if scope is None:
            continue
        groups.setdefault(scope.key, []).append(trial)
        labels[scope.key] = (scope.label, scope.n)
    if not groups:
        return "", ()
    key = max(groups, key=lambda k: (len(groups[k]), labels[k][1]))
    started = experiment.started_at or experiment.created_at
    best = -math.inf
    points = []
    for trial in sorted(groups[key], key=lambda t: (t.finished_at, t.index)):
        assert trial.finished_at is not None and trial.score is not None
        best = max(best, trial.score)
        points.append((round((trial.finished_at - started).total_seconds(), 3), best))
    return labels[key][0], tuple(points)
