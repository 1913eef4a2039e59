"""Records as flat rows, for analysis outside dspex (pandas, CSV, JSON lines, Parquet).

One row per trial (:func:`trial_rows`) and one per example result (:func:`example_rows`);
every value is a string, a number, a boolean or None, so that every table format holds it.
Inputs, labels and predictions are JSON text; each metric is a ``metric.<name>`` column::

    >>> from dspex import Experiment, ProgramInfo
    >>> trial_rows(Experiment(name="empty", program=ProgramInfo(name="qa")))
    []

:meth:`dspex.Experiment.trials_frame` and :meth:`~dspex.Experiment.examples_frame` wrap
them in pandas DataFrames (``pip install 'dspex[analysis]'``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from dspex.extras import require
from dspex.model.event import EventKind
from dspex.model.outcomes import returned_trial_id, trial_outcome
from dspex.model.payloads import LmCallPayload, payload_of
from dspex.model.scopes import example_value, scope_of
from dspex.model.spans import span_tree
from dspex.model.trial import ExampleResult, Trial, example_key
from dspex.model.trialref import candidate_number


class Experiment(Protocol):
    """What the rows read of an experiment (a :class:`dspex.Experiment`); a protocol, so
    that this module sits below the experiment that uses it."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def best_trial_id(self) -> str | None: ...

    @property
    def trials(self) -> Sequence[Trial]: ...


__all__ = ["Row", "data_frame", "example_rows", "trial_rows"]

Row = dict[str, Any]


def trial_rows(experiment: Experiment) -> list[Row]:
    """One row per trial: identity, lineage, what the optimizer made of it (``strategy``,
    ``candidate``, ``step``, ``outcome``, ``returned``: the same facts the views show),
    score and its scope, cost and timing (with ``retrievals``, ``embedding_calls`` and
    ``embedding_cost``)."""
    trials = experiment.trials
    strategies = _strategies(trials)
    returned = returned_trial_id(trials)
    return [_trial_row(experiment, t, strategies, returned) for t in trials]


def _strategies(trials: Sequence[Trial]) -> dict[str, str]:
    """Trial id -> the strategy named by the ``candidate_created`` event that made it."""
    found: dict[str, str] = {}
    for trial in trials:
        for event in trial.events:
            created = payload_of(event, EventKind.CANDIDATE_CREATED)
            if created is not None and isinstance(created["candidate"], str):
                if isinstance(created["strategy"], str) and created["strategy"]:
                    found[created["candidate"]] = created["strategy"]
    return found


def _step(trial: Trial) -> int | None:
    """The optimizer step (GEPA's iteration) a trial belongs to, from its record."""
    for key in ("step", "iteration"):
        value = trial.metadata.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    for event in trial.events:
        step = payload_of(event, EventKind.STEP)
        if step is not None and isinstance(step["step"], int):
            return step["step"]
    return None


def _trial_row(
    experiment: Experiment, trial: Trial, strategies: dict[str, str], returned: str | None
) -> Row:
    scope = scope_of(trial)
    results = trial.example_results
    outcome = trial_outcome(trial)
    return {
        "experiment_id": experiment.id,
        "experiment": experiment.name,
        "trial_id": trial.id,
        "index": trial.index,
        "name": trial.name,
        "role": _text(trial.metadata.get("role")),
        "strategy": strategies.get(trial.id),
        "candidate": candidate_number(trial),
        "step": _step(trial),
        "outcome": outcome.value if outcome is not None else None,
        "returned": trial.id == returned,
        "parents": ",".join(trial.parent_trial_ids),
        "status": trial.status.value,
        "score": trial.score,
        "scope": scope.name if scope else None,
        "scope_fingerprint": scope.fingerprint if scope else None,
        "scope_n": scope.n if scope else None,
        "metric": scope.metric if scope else None,
        "best": trial.id == experiment.best_trial_id,
        "examples": len(results),
        "errors": sum(1 for r in results if r.error is not None),
        "tokens": sum(r.tokens for r in results),
        "cost": sum(r.cost or 0.0 for r in results),
        "lm_calls": sum(1 for e in trial.events if e.kind is EventKind.LM_CALL),
        "cache_hits": sum(
            1
            for e in trial.events
            if (call := payload_of(e, EventKind.LM_CALL)) and call["cache_hit"]
        ),
        **_rag_columns(trial),
        "started_at": trial.started_at.isoformat(),
        "finished_at": trial.finished_at.isoformat() if trial.finished_at else None,
        "duration_ms": trial.duration_ms,
        "error": trial.error.type if trial.error else None,
    }


def _rag_columns(trial: Trial) -> Row:
    """Retrievals and embedding calls: counts, and what the embedder's provider billed."""
    retrievals = embeddings = 0
    cost = 0.0
    for event in trial.events:
        if payload_of(event, EventKind.RETRIEVAL) is not None:
            retrievals += 1
        embedded = payload_of(event, EventKind.EMBEDDING)
        if embedded is not None:
            embeddings += 1
            cost += float(embedded["cost"]) if isinstance(embedded["cost"], int | float) else 0.0
    return {"retrievals": retrievals, "embedding_calls": embeddings, "embedding_cost": cost}


def example_rows(experiment: Experiment) -> list[Row]:
    """One row per example result of every trial, with the value it added to the score."""
    names = sorted(
        {name for t in experiment.trials for r in t.example_results for name in r.metrics}
    )
    rows = []
    for trial in experiment.trials:
        scope = scope_of(trial)
        workers = run_workers(trial)
        for result in trial.example_results:
            row = _example_row(experiment, trial, result, scope.metric if scope else None, names)
            row["worker"] = workers.get(result.index, result.worker)
            rows.append(row)
    return rows


def run_workers(trial: Trial) -> dict[int, str]:
    """Example index -> the worker its program run ran on, as the views name it (the
    run the span tree pairs with the example's result; DSPy's ``Evaluate`` records the
    result on another thread than the run)."""
    events = {e.id: e for e in trial.events}
    found: dict[int, str] = {}
    for run_id, example_id in span_tree(trial.events).scored_runs.items():
        scored = payload_of(events[example_id], EventKind.EXAMPLE_RESULT)
        if scored is not None and isinstance(scored["example"], int):
            found[scored["example"]] = events[run_id].worker
    return found


def _example_row(
    experiment: Experiment,
    trial: Trial,
    result: ExampleResult,
    metric: str | None,
    names: list[str],
) -> Row:
    row: Row = {
        "experiment_id": experiment.id,
        "trial_id": trial.id,
        "trial_index": trial.index,
        "trial": trial.name,
        "example_index": result.index,
        "example_key": example_key(result.inputs, result.labels),
        "value": example_value(result, metric) if metric is not None else None,
        "passed": None
        if metric is None
        else result.error is None and example_value(result, metric) > 0,
        "inputs": _json(result.inputs),
        "labels": _json(result.labels),
        "prediction": None if result.prediction is None else _json(result.prediction),
        "latency_ms": result.latency_ms,
        "tokens": result.tokens,
        "cost": result.cost,
        "worker": result.worker,
        "error": result.error.type if result.error else None,
        "error_message": result.error.message if result.error else None,
    }
    for name in names:
        row[f"metric.{name}"] = result.metrics.get(name)
    return row


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def data_frame(rows: list[Row]) -> Any:
    """``rows`` as a pandas DataFrame (pandas is the optional ``analysis`` extra)."""
    pandas = require("pandas", "analysis", "a DataFrame")
    return pandas.DataFrame.from_records(rows)


def _lm_calls(trial: Trial) -> list[LmCallPayload]:
    calls = (payload_of(e, EventKind.LM_CALL) for e in trial.events)
    return [call for call in calls if call is not None]
