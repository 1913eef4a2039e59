"""The live exporter: each trial sent to an OTLP receiver as it finishes, off the recording path.

    exporter = LiveOtlpExporter(OtlpDestination("http://127.0.0.1:6006"))
    exporter.trial_finished(experiment_header, trial)   # queues it and returns at once
    ...
    report = exporter.experiment_finished(experiment)   # {"otlp_export": {...}} for the record

A daemon thread maps the queued trials to spans and sends them, a trial (one trace) per
request. A failed send is retried (``attempts`` times, ``retry_delay`` seconds apart,
each time with the OpenTelemetry exporter's own retries); the trials queued behind it
wait for it. When the experiment ends, trials still on their
way get ``flush_timeout`` seconds if the receiver has been answering, none if it has
failed; whatever was not delivered is logged and listed in the report, which the
journal keeps in the experiment's metadata with the command that sends them again
(``dspex export EXP_ID --otlp URL``). Nothing is lost: every trial is in the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from dspex.export.mapping import trial_spans
from dspex.export.otlp import OtlpDestination
from dspex.export.selection import TrialRows, resend_command
from dspex.export.spans import SpanRecord
from dspex.model import Experiment, Trial

__all__ = ["LiveOtlpExporter"]

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    experiment: Experiment
    trial: Trial
    attempts: int = 0
    spans: list[SpanRecord] | None = field(default=None, repr=False)


class LiveOtlpExporter:
    """A :class:`~dspex.export.sink.TrialSink` that sends trials from a background thread."""

    def __init__(
        self,
        destination: OtlpDestination,
        *,
        flush_timeout: float = 5.0,
        attempts: int = 3,
        retry_delay: float = 1.0,
    ) -> None:
        self.destination = destination
        self.flush_timeout = flush_timeout
        self.attempts = attempts
        self.retry_delay = retry_delay
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._received: list[tuple[str, int]] = []  # (trial id, row number)
        self._delivered: set[str] = set()
        self._problem: str | None = None  # the last reason a send failed
        self._failing = False  # the last request failed: do not wait for the receiver
        self._busy = False
        self._closing = False
        self._given_up = False
        self._thread: threading.Thread | None = None
        destination.add_failure_listener(self._request_failed)

    # -- the journal's side (TrialSink) --------------------------------------------------

    def trial_finished(self, experiment: Experiment, trial: Trial) -> None:
        """Queue ``trial`` for sending and return at once."""
        with self._cond:
            if self._closing:
                logger.warning(
                    "dspex: trial %s finished after its experiment; not sent to %s "
                    "(send it with `dspex export %s --otlp %s`)",
                    trial.id, self.destination.shown_url, experiment.id,
                    self.destination.shown_url,
                )  # fmt: skip
                return
            self._queue.append(_Pending(experiment, trial))
            self._received.append((trial.id, trial.index))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="dspex-otlp-export", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def experiment_finished(self, experiment: Experiment) -> dict[str, Any]:
        """Stop sending (after a bounded wait) and report what was not delivered."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            deadline = time.monotonic() + self.flush_timeout
            while (self._queue or self._busy) and not self._failing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._given_up = True
            self._cond.notify_all()
        self.destination.shutdown()  # an export in flight stops retrying
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        return {"otlp_export": self._report(experiment)}

    # -- the sending thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._given_up or not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            try:
                self._deliver(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, batch: list[_Pending]) -> None:
        for position, pending in enumerate(batch):
            if self._given_up:
                return
            problem = self._send(pending)
            with self._cond:
                if problem is None:
                    self._failing = False
                    self._delivered.add(pending.trial.id)
                    continue
                if self._given_up:  # stopped while sending: no news about the receiver
                    return
                self._failing = True
                self._problem = problem
                self._cond.notify_all()
            self._retry_later(batch[position:], problem)
            return

    def _send(self, pending: _Pending) -> str | None:
        try:
            if pending.spans is None:
                pending.spans = trial_spans(pending.trial, pending.experiment)
            return self.destination.send(pending.spans)
        except Exception as exc:  # noqa: BLE001 - reported like any failed send
            return f"{type(exc).__name__}: {exc}"

    def _retry_later(self, waiting: list[_Pending], problem: str) -> None:
        """The first of ``waiting`` failed: count its attempt, then requeue it (if it has
        attempts left) and the trials behind it after ``retry_delay``, unless the
        experiment ends first."""
        failed, behind = waiting[0], waiting[1:]
        failed.attempts += 1
        retry = ([failed] if failed.attempts < self.attempts else []) + behind
        logger.warning(
            "dspex: could not send trial %s to %s: %s%s",
            failed.trial.id, self.destination.shown_url, problem,
            " (will retry)" if failed in retry else " (gave up on it)",
        )  # fmt: skip
        with self._cond:
            if retry and not self._cond.wait_for(lambda: self._given_up, self.retry_delay):
                self._queue.extendleft(reversed(retry))

    def _request_failed(self, reason: str) -> None:
        with self._cond:
            self._failing = True
            self._problem = reason
            self._cond.notify_all()

    # -- the report ----------------------------------------------------------------------

    def _report(self, experiment: Experiment) -> dict[str, Any]:
        with self._cond:
            rows = TrialRows(
                tuple(i for i, _ in self._received), tuple(r for _, r in self._received)
            )
            undelivered = [t for t in rows.ids if t not in self._delivered]
            report: dict[str, Any] = {
                "endpoint": self.destination.shown_url,
                "project": self.destination.project,
                "trials": len(rows.ids),
                "delivered": len(rows.ids) - len(undelivered),
                "undelivered": undelivered,
                "error": (self._problem or "still on its way when the experiment ended")
                if undelivered
                else None,
            }
        if undelivered:
            url = self.destination.shown_url
            report["resend"] = resend_command(experiment.id, rows, undelivered, url)
            logger.warning(
                "dspex: %d of %d trials of experiment %s were not delivered to %s (%s): "
                "trials %s; they are in the store: send them with `%s`",
                len(undelivered), report["trials"], experiment.id, url, report["error"],
                rows.shown(undelivered), report["resend"],
            )  # fmt: skip
        return report
