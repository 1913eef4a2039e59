"""Export a recorded experiment: to an OTLP receiver, or to a file of OTLP JSON.

    experiment = store.get_experiment("exp_...")          # sealed, or running
    outcome = send_experiment(experiment, OtlpDestination("http://127.0.0.1:6006"))
    outcome.summary()   # 'exported 22 trials (1478 spans) of exp_... to http://... in 0.9s'
    write_otlp_json(experiment, Path("exp.otlp.jsonl"))

A running experiment exports the trials it has finished. Ids are derived from dspex ids
(see :mod:`dspex.export.spans`), so exporting again sends the same traces.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dspex.errors import ExportError
from dspex.export.mapping import trial_spans
from dspex.export.otlp import OtlpDestination, otlp_json_lines
from dspex.export.spans import SpanRecord
from dspex.model import Experiment, Trial

__all__ = ["BATCH_SPANS", "ExportOutcome", "send_experiment", "write_otlp_json"]

BATCH_SPANS = 2000
"""About how many spans one OTLP request carries (whole trials; one trial may exceed it)."""


@dataclass
class ExportOutcome:
    """What an export did: trials and spans sent, and the trials a receiver did not take."""

    experiment_id: str
    destination: str
    trials: int = 0
    spans: int = 0
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # trial id -> reason
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        head = (
            f"exported {len(self.delivered)} of {self.trials} trials ({self.spans} spans) "
            f"of {self.experiment_id} to {self.destination} in {self.seconds:.1f}s"
        )
        if self.ok:
            return head
        reasons = sorted(set(self.failed.values()))
        return f"{head}; {len(self.failed)} not delivered: " + "; ".join(reasons)


def send_experiment(
    experiment: Experiment,
    destination: OtlpDestination,
    *,
    trial_ids: Collection[str] | None = None,
    batch_spans: int = BATCH_SPANS,
) -> ExportOutcome:
    """Send every trial of ``experiment`` (or those in ``trial_ids``) as OTLP traces."""
    started = time.perf_counter()
    outcome = ExportOutcome(experiment.id, destination.shown_url)
    for batch in _batches(_selected(experiment, trial_ids), experiment, batch_spans):
        spans = [span for _, trial_spans_ in batch for span in trial_spans_]
        problem = destination.send(spans)
        outcome.trials += len(batch)
        outcome.spans += len(spans)
        for trial, _ in batch:
            if problem is None:
                outcome.delivered.append(trial.id)
            else:
                outcome.failed[trial.id] = problem
    outcome.seconds = time.perf_counter() - started
    return outcome


def write_otlp_json(
    experiment: Experiment,
    path: Path,
    *,
    project: str = "dspex",
    trial_ids: Collection[str] | None = None,
) -> ExportOutcome:
    """Write ``experiment`` to ``path``: one line of OTLP JSON per trial."""
    started = time.perf_counter()
    outcome = ExportOutcome(experiment.id, str(path))
    traces = [(trial, trial_spans(trial, experiment)) for trial in _selected(experiment, trial_ids)]
    try:
        with path.open("w", encoding="utf-8") as out:
            for line in otlp_json_lines((spans for _, spans in traces), project=project):
                out.write(line + "\n")
    except OSError as exc:
        raise ExportError(f"cannot write OTLP JSON to {path}: {exc.strerror or exc}") from exc
    outcome.trials = len(traces)
    outcome.spans = sum(len(spans) for _, spans in traces)
    outcome.delivered = [trial.id for trial, _ in traces]
    outcome.seconds = time.perf_counter() - started
    return outcome


def _selected(experiment: Experiment, trial_ids: Collection[str] | None) -> list[Trial]:
    if trial_ids is None:
        return list(experiment.trials)
    missing = set(trial_ids) - {t.id for t in experiment.trials}
    if missing:
        raise ExportError(
            f"experiment {experiment.id} has no trial {sorted(missing)[0]!r} to export "
            "(see `dspex experiments show` for its trials)"
        )
    return [t for t in experiment.trials if t.id in trial_ids]


def _batches(
    trials: Iterable[Trial], experiment: Experiment, batch_spans: int
) -> Iterator[list[tuple[Trial, list[SpanRecord]]]]:
    batch: list[tuple[Trial, list[SpanRecord]]] = []
    size = 0
    for trial in trials:
        spans = trial_spans(trial, experiment)
        batch.append((trial, spans))
        size += len(spans)
        if size >= batch_spans:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
