"""Export a recorded experiment: to an OTLP receiver, or to a file of OTLP JSON.

    experiment = store.get_experiment("exp_...")          # sealed, or running
    outcome = send_experiment(experiment, OtlpDestination("http://127.0.0.1:6006"))
    outcome.summary()   # 'exported 22 trials (1478 spans) of exp_... to http://... in 0.9s'
    write_otlp_json(experiment, Path("exp.otlp.jsonl"))

A running experiment exports the trials it has finished. Each trial's trace goes in a
request of its own, so that a receiver that refuses one trial (or takes long over a
big one: MLflow stores each request in one transaction) does not fail the others. Ids
are derived from dspex ids (see :mod:`dspex.export.spans`), so exporting again sends
the same traces.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from dspex.errors import ExportError
from dspex.export.mapping import trial_spans
from dspex.export.otlp import OtlpDestination, otlp_json_lines
from dspex.model import Experiment, Trial

__all__ = ["ExportOutcome", "send_experiment", "write_otlp_json"]


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
) -> ExportOutcome:
    """Send every trial of ``experiment`` (or those in ``trial_ids``) as OTLP traces,
    one request per trial."""
    started = time.perf_counter()
    outcome = ExportOutcome(experiment.id, destination.shown_url)
    for trial in _selected(experiment, trial_ids):
        spans = trial_spans(trial, experiment)
        problem = destination.send(spans)
        outcome.trials += 1
        outcome.spans += len(spans)
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
