"""Shared pieces of the optimizer hooks: evaluation units and variable diffs.

An :class:`EvaluationUnit` is one open trial that an optimizer evaluates example by
example, from any thread. Each run records into its own short-lived recorder (as the
harness does) and is merged into the trial when it ends, so that per-example token
counts are exact and no event can land on another candidate's trial. When the expected
number of runs has arrived, the unit closes its trial (score and scope,
``trial_score``, ``candidate_scored``), all built by :mod:`dspex.capture.scoring`.

    unit = EvaluationUnit(journal, recorder, expected=8, scope="minibatch",
                          metric="exact_match", candidate=recorder.trial_id)
    fn = unit.runner(wrapped_program, index_of=lambda ex: trainset_index[id(ex)])
    fn(example)   # runs under recording(...), records an example_result
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from dspex.capture.context import recording
from dspex.capture.recorder import TrialRecorder, current_worker_name
from dspex.capture.scoring import (
    ExampleRun,
    Score,
    record_candidate_scored,
    record_example,
    record_score,
    usage_of,
)
from dspex.journal import ExperimentJournal
from dspex.model import ErrorInfo, ExampleResult, Trial, Variables

__all__ = ["EvaluationUnit", "changes_between"]


def changes_between(before: Variables, after: Variables) -> list[dict[str, Any]]:
    """Per predictor, the instructions and demos that differ (``candidate_created`` changes)."""
    changes: list[dict[str, Any]] = []
    for name, new in after.predictors.items():
        old = before.predictors.get(name)
        if old is None or old.instructions != new.instructions:
            changes.append(
                {
                    "predictor": name,
                    "field": "instructions",
                    "before": old.instructions if old else None,
                    "after": new.instructions,
                }
            )
        if old is None or old.demos != new.demos:
            changes.append(
                {
                    "predictor": name,
                    "field": "demos",
                    "before": list(old.demos) if old else None,
                    "after": list(new.demos),
                }
            )
    return changes


class EvaluationUnit:
    """One trial evaluated run by run (from any thread) until ``expected`` runs are in."""

    def __init__(
        self,
        journal: ExperimentJournal,
        recorder: TrialRecorder,
        *,
        expected: int,
        scope: str,
        metric: str,
        candidate: str | None,
        score_trial: bool = True,
        on_closing: Callable[[EvaluationUnit], None] | None = None,
    ) -> None:
        self.journal = journal
        self.recorder = recorder
        self.expected = expected
        self.scope = scope
        self.metric = metric
        self.candidate = candidate
        self.score_trial = score_trial
        self.on_closing = on_closing  # last chance to add events before the score
        self.results: list[ExampleResult] = []
        self.scores: list[float] = []
        self.trial: Trial | None = None
        self.score_record: Score | None = None
        self._closing = False
        self._lock = threading.Lock()
        self._programs: list[Any] = []  # keeps copies alive so their ids stay theirs

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def score(self) -> float | None:
        with self._lock:
            return sum(self.scores) / len(self.scores) if self.scores else None

    def adopt(self, program: Any, paths: dict[int, str]) -> None:
        """Attribute module events of ``program`` (a copy of the candidate) to this trial."""
        with self._lock:
            self._programs.append(program)
            self.recorder.module_paths.update(paths)

    def runner(
        self,
        wrapped: Callable[[Any], dict[str, Any]],
        index_of: Callable[[Any], int],
        extra: dict[str, Any] | None = None,
    ) -> Callable[[Any], dict[str, Any]]:
        """``wrapped`` (example -> DSPy output dict) running under this unit's trial."""

        def run(example: Any) -> dict[str, Any]:
            run_recorder = TrialRecorder(self.recorder.trial_id)
            run_recorder.module_paths.update(self.recorder.module_paths)
            started = time.perf_counter()
            with recording(run_recorder):
                output = wrapped(example)
            latency_ms = (time.perf_counter() - started) * 1000
            self._record(run_recorder, output, example, index_of(example), latency_ms, extra)
            return output

        run.__wrapped__ = wrapped  # type: ignore[attr-defined]
        return run

    def _record(
        self,
        run_recorder: TrialRecorder,
        output: dict[str, Any],
        example: Any,
        index: int,
        latency_ms: float,
        extra: dict[str, Any] | None,
    ) -> None:
        # wrap_program swallows the program's exception (a warning): find it in the run
        error = next(
            (
                e.payload["error"]
                for e in run_recorder.raw_events()
                if e.kind == "module_end" and e.parent_id is None and e.payload.get("error")
            ),
            None,
        )
        raw_score = output.get("score", 0.0)
        tokens, cost = usage_of(run_recorder.raw_events())
        run = ExampleRun(
            index,
            example,
            output.get("prediction"),
            raw_score if isinstance(raw_score, int | float) else 0.0,
            ErrorInfo(**error) if error else None,
            latency_ms=latency_ms,
            tokens=tokens,
            cost=cost,
            worker=current_worker_name(),
            extra=extra or {},
        )
        result = record_example(run_recorder, run, self.metric)
        self.recorder.merge(run_recorder.raw_events())
        with self._lock:
            self.results.append(result)
            self.scores.append(0.0 if result.error else result.metrics[self.metric])
            done = len(self.results) >= self.expected
        if done:
            self.close()

    def close(self, error: BaseException | None = None) -> Trial | None:
        """Score and finish the trial (once); ``error`` marks it failed."""
        with self._lock:
            if self._closing:
                return self.trial
            self._closing = True
            results = sorted(self.results, key=lambda r: r.index)
        if self.on_closing is not None:
            self.on_closing(self)
        score = record_score(self.recorder, results, self.metric, scope=self.scope)
        if self.candidate is not None and error is None:
            record_candidate_scored(self.recorder, self.candidate, score, scope=self.scope)
        self.score_record = score
        trial = self.journal.finish_trial(
            self.recorder,
            example_results=results,
            score=score.value if self.score_trial else None,
            score_scope=score.scope if self.score_trial else None,
            error=error,
        )
        with self._lock:
            self.trial = trial
        return trial
