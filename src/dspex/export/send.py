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

A receiver that is not there is not tried a thousand times: the export gives up (see
:class:`GiveUp`) after a few trials in a row that could not reach it, or once none has
reached it for a while, and :attr:`ExportOutcome.not_sent` names every trial it did not
deliver (:func:`dspex.export.selection.resend_command` is the command that sends them).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from dspex.errors import ExportError
from dspex.export.mapping import trial_spans
from dspex.export.otlp import OtlpDestination, otlp_json_lines
from dspex.export.phoenix import is_phoenix, phoenix_base, score_annotations, send_annotations
from dspex.export.selection import TrialRows
from dspex.model import Experiment, Trial

__all__ = ["ExportOutcome", "GiveUp", "send_experiment", "write_otlp_json"]


@dataclass(frozen=True)
class GiveUp:
    """When an export stops trying a receiver that is not there.

    It stops after ``after`` trials in a row could not reach the receiver (no connection,
    no answer in time, or a gateway's 502/503/504; a receiver that answers with another
    refusal is there, and only that trial fails), or once no trial has reached it for
    ``seconds``: from then on no request waits longer than what remains. With the default
    request timeout (10 s) a dead receiver costs at most ``seconds`` (or one timeout, if
    longer), whatever the number of trials. Settings ``export.otlp_give_up_after`` and
    ``export.otlp_give_up_seconds``.
    """

    after: int = 3
    seconds: float = 20.0

    def verdict(self, streak: int, waited: float, problem: str) -> str | None:
        """Why the export stops after ``streak`` trials in a row, ``waited`` seconds,
        did not reach the receiver (the last because of ``problem``); None: go on."""
        if streak >= self.after:
            return (
                f"gave up after {streak} trial{'s' if streak != 1 else ''} in a row could not "
                "reach it "
                f"(export.otlp_give_up_after = {self.after}): {problem}"
            )
        if waited >= self.seconds:
            return (
                f"gave up: no trial reached it for {waited:.0f}s "
                f"(export.otlp_give_up_seconds = {self.seconds:g}): {problem}"
            )
        return None


@dataclass
class ExportOutcome:
    """What an export did: trials and spans sent, the trials a receiver did not take, and
    why it stopped early (``gave_up``) if it did."""

    experiment_id: str
    destination: str
    trials: int = 0
    spans: int = 0
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # trial id -> reason
    not_sent: list[str] = field(default_factory=list)  # failed, and never tried, in order
    gave_up: str | None = None
    seconds: float = 0.0
    shown: str = ""  # the trials not sent, as messages name them: "0–2, 5"
    annotated: int = 0
    """Phoenix span annotations sent (scores; see :mod:`dspex.export.phoenix`)."""
    annotation_problem: str | None = None

    @property
    def ok(self) -> bool:
        return not self.not_sent

    def summary(self) -> str:
        head = (
            f"exported {len(self.delivered)} of {self.trials} trials ({self.spans} spans) "
            f"of {self.experiment_id} to {self.destination} in {self.seconds:.1f}s"
        )
        if self.annotated:
            head += f"; {self.annotated} score annotations"
        if self.annotation_problem is not None:
            head += f"; annotations NOT all sent ({self.annotation_problem})"
        if self.ok:
            return head
        missing = f"{len(self.not_sent)} not delivered (trials {self.shown})"
        if self.gave_up is not None:
            return f"{head}; {self.gave_up}; {missing}"
        reasons = sorted(set(self.failed.values()))
        return f"{head}; {missing}: " + "; ".join(reasons)


def send_experiment(
    experiment: Experiment,
    destination: OtlpDestination,
    *,
    trial_ids: Collection[str] | None = None,
    give_up: GiveUp | None = None,
    phoenix_annotations: bool | None = False,
) -> ExportOutcome:
    """Send every trial of ``experiment`` (or those in ``trial_ids``) as OTLP traces,
    one request per trial, giving up on a receiver that is not there (``give_up``,
    default :class:`GiveUp()`). ``phoenix_annotations``: also send the scores as Phoenix
    span annotations (None: when the receiver answers as Phoenix)."""
    rule = give_up or GiveUp()
    started = time.perf_counter()
    outcome = ExportOutcome(experiment.id, destination.shown_url)
    selected = _selected(experiment, trial_ids)
    streak, since = 0, None  # trials in a row that did not reach the receiver, from when
    for position, trial in enumerate(selected):
        spans = trial_spans(trial, experiment)
        tried = time.monotonic()
        deadline = None if since is None else since + rule.seconds
        problem = destination.send(spans, deadline=deadline)
        outcome.trials += 1
        outcome.spans += len(spans)
        if problem is None:
            outcome.delivered.append(trial.id)
            streak, since = 0, None
            continue
        outcome.failed[trial.id] = problem
        if not destination.unreachable:
            streak, since = 0, None
            continue
        streak, since = streak + 1, tried if since is None else since
        outcome.gave_up = rule.verdict(streak, time.monotonic() - since, problem)
        if outcome.gave_up is not None:
            outcome.trials += len(selected) - position - 1
            break
    delivered = set(outcome.delivered)
    base = phoenix_base(destination.url)
    if phoenix_annotations is None and delivered:
        phoenix_annotations = is_phoenix(base, destination.headers)
    if phoenix_annotations:
        for trial in selected:
            if trial.id not in delivered:
                continue
            annotations = score_annotations(trial)
            problem = send_annotations(base, annotations, headers=destination.headers)
            if problem is not None:
                outcome.annotation_problem = problem
                break
            outcome.annotated += len(annotations)
    outcome.not_sent = [t.id for t in selected if t.id not in delivered]
    outcome.shown = TrialRows.of(experiment.trials).shown(outcome.not_sent)
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
