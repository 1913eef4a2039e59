"""Shared pieces of the optimizer hooks: runs and scores, evaluation units, diffs.

Every hook records "examples ran" and "a candidate was scored" through this module, on
top of :mod:`dspex.capture.scoring` (the one place scores are built), so the payloads are
the same whatever the optimizer: :func:`record_runs` for runs another component executed,
:func:`record_score` / :func:`finish_scored` for ``trial_score``, ``candidate_scored``
and the score's scope.

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
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from dspex.capture import scoring
from dspex.capture.context import recording
from dspex.capture.instrument import Instrumented, guarded
from dspex.capture.recorder import TrialRecorder, current_worker_name
from dspex.capture.scoring import (
    NO_PREDICTION,
    ExampleRun,
    prediction_dict,
    record_candidate_scored,
    record_example,
    score_of,
    usage_of,
)
from dspex.journal import ExperimentJournal
from dspex.model import ErrorInfo, EventKind, ExampleResult, ScoreScope, Trial, Variables
from dspex.model.payloads import CandidateScores, Change, ExampleResultExtra, payload_of

__all__ = [
    "EvaluationUnit",
    "RecordedEvaluate",
    "changes_between",
    "finish_evaluated",
    "finish_scored",
    "mean_score",
    "number_or_none",
    "record_runs",
    "record_score",
]


def changes_between(before: Variables, after: Variables) -> list[Change]:
    """Per predictor, the instructions and demos that differ (``candidate_created`` changes)."""
    changes: list[Change] = []
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


class RecordedEvaluate:
    """An optimizer's ``dspy.Evaluate`` instance whose calls go to ``hook.evaluate(evaluate,
    program, ...)`` (the hook records the call as a candidate's trial); every other
    attribute is the instance's own. COPRO and the random search build one per compile."""

    def __init__(self, hook: Any, evaluate: Any) -> None:
        self._hook = hook
        self._evaluate = evaluate

    def __call__(self, program: Any, *args: Any, **kwargs: Any) -> Any:
        piece = f"{self._hook.name}: its Evaluate's calls"
        return guarded(self._hook, piece, "evaluate", self._evaluate, (program, *args), kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._evaluate, name)


# -- runs another component executed, and scores -------------------------------------


def record_runs(
    recorder: TrialRecorder,
    runs: Iterable[tuple[int, Any, Any, Any]],
    metric: str,
    *,
    extra: ExampleResultExtra | None = None,
) -> list[ExampleResult]:
    """ExampleResults (and ``example_result`` events) of runs another component executed
    (``dspy.Evaluate`` inside MIPROv2, COPRO, random search; GEPA's adapter).

    ``runs`` are ``(index, example, prediction, metric value)``; a missing or empty
    prediction is the evaluator's sign that the program or metric raised.
    """
    results = []
    for index, example, prediction, value in runs:
        empty = prediction is None or not prediction_dict(prediction)
        run = ExampleRun(
            index,
            example,
            None if empty else prediction,
            value,
            NO_PREDICTION if empty else None,
            extra=extra.copy() if extra else {},
        )
        results.append(record_example(recorder, run, metric))
    return results


def mean_score(results: Sequence[ExampleResult], metric: str) -> float | None:
    return score_of(results, metric)


def record_score(
    recorder: TrialRecorder,
    results: Sequence[ExampleResult],
    *,
    metric: str,
    scope: str,
    candidate: str | None,
    scored_extra: CandidateScores | None = None,
) -> tuple[float | None, ScoreScope | None]:
    """Emit the score of ``results`` (``trial_score``, and ``candidate_scored`` for
    ``candidate``); return it with its scope, for the trial's record."""
    score = scoring.record_score(recorder, results, metric, scope=scope)
    if candidate is not None:
        record_candidate_scored(recorder, candidate, score, scope=scope, extra=scored_extra)
    return score.value, score.scope


def finish_scored(
    journal: ExperimentJournal,
    recorder: TrialRecorder,
    results: Sequence[ExampleResult],
    *,
    metric: str,
    scope: str,
    candidate: str | None,
    score_trial: bool = True,
    error: BaseException | None = None,
    scored_extra: CandidateScores | None = None,
) -> Trial:
    """:func:`record_score`, then finish the trial with the score and its scope.

    ``score_trial=False`` keeps the score off the trial (runs of several candidates);
    a failed trial (``error``) gets no ``candidate_scored``.
    """
    value, where = record_score(
        recorder,
        results,
        metric=metric,
        scope=scope,
        candidate=candidate if error is None else None,
        scored_extra=scored_extra,
    )
    return journal.finish_trial(
        recorder,
        example_results=sorted(results, key=lambda r: r.index),
        score=value if score_trial else None,
        score_scope=where if score_trial else None,
        error=error,
    )


def finish_evaluated(
    journal: ExperimentJournal,
    recorder: TrialRecorder,
    result: Any,
    *,
    metric: str,
    index: dict[int, int],
    score_key: Literal["search_score", "copro_score"],
) -> Trial:
    """Finish a candidate's trial from what its ``dspy.Evaluate`` call returned (COPRO,
    the random search): its examples (numbered by ``index``, ``id(example)`` -> position in
    the optimizer's set, else their position in the result), scored over the full set,
    with the evaluator's own score under ``score_key`` in ``candidate_scored``."""
    runs = [
        (index.get(id(example), i), example, prediction, value)
        for i, (example, prediction, value) in enumerate(getattr(result, "results", []) or [])
    ]
    score = number_or_none(getattr(result, "score", None))
    own: CandidateScores = (
        {"copro_score": score} if score_key == "copro_score" else {"search_score": score}
    )
    return finish_scored(
        journal,
        recorder,
        record_runs(recorder, runs, metric),
        metric=metric,
        scope="full",
        candidate=recorder.trial_id,
        scored_extra=own,
    )


def number_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a number (an optimizer's score), else None."""
    return float(value) if isinstance(value, int | float) else None


# -- a trial evaluated run by run -----------------------------------------------------


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
        self.trial: Trial | None = None
        self._closing = False
        self._lock = threading.Lock()
        self._programs: list[Any] = []  # keeps copies alive so their ids stay theirs

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def score(self) -> float | None:
        with self._lock:
            return mean_score(self.results, self.metric)

    def adopt(self, program: Any, paths: dict[int, str]) -> None:
        """Attribute module events of ``program`` (a copy of the candidate) to this trial."""
        with self._lock:
            self._programs.append(program)
            self.recorder.module_paths.update(paths)

    def runner(
        self,
        wrapped: Callable[[Any], dict[str, Any]],
        index_of: Callable[[Any], int],
        extra: ExampleResultExtra | None = None,
        *,
        hook: Instrumented | None = None,
    ) -> Callable[[Any], dict[str, Any]]:
        """``wrapped`` (example -> DSPy output dict) running under this unit's trial; with
        ``hook``, a failure of the recording degrades it and the run goes on unrecorded."""

        def record(call: Callable[[Any], dict[str, Any]], example: Any) -> dict[str, Any]:
            run_recorder = TrialRecorder(self.recorder.trial_id)
            run_recorder.module_paths.update(self.recorder.module_paths)
            started = time.perf_counter()
            with recording(run_recorder):
                output = call(example)
            latency_ms = (time.perf_counter() - started) * 1000
            self._record(run_recorder, output, example, index_of(example), latency_ms, extra)
            return output

        def run(example: Any) -> dict[str, Any]:
            if hook is None:
                return record(wrapped, example)
            piece = f"{getattr(hook, 'name', 'optimizer')}: a candidate's run"
            output: dict[str, Any] = guarded(hook, piece, record, wrapped, (example,), {})
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
        extra: ExampleResultExtra | None,
    ) -> None:
        raw = run_recorder.raw_events()
        # wrap_program swallows the program's exception (a warning): find it in the run
        ends = (payload_of(e, EventKind.MODULE_END) for e in raw if e.parent_id is None)
        error = next((end["error"] for end in ends if end is not None and end["error"]), None)
        raw_score = output.get("score", 0.0)
        tokens, cost = usage_of(raw)
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
        trial = finish_scored(
            self.journal,
            self.recorder,
            results,
            metric=self.metric,
            scope=self.scope,
            candidate=self.candidate,
            score_trial=self.score_trial,
            error=error,
        )
        with self._lock:
            self.trial = trial
        return trial
