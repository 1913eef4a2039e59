"""The experiment's listener: what becomes of DSPy calls that no trial is recording yet.

:class:`ExperimentListener` implements :class:`~dspex.capture.context.CaptureListener`
for one :class:`~dspex.journal.ExperimentJournal`:

* a top-level call made outside any trial (``program(question=...)``, ``await
  program.acall(...)``, ``program.batch(...)``, ``dspy.Parallel``, a bare LM call) goes
  into a trial of role ``calls``: one per run of direct calls, that is until the next
  compile or evaluation starts; each top-level call is a root of its timeline with its
  module tree. A calls trial is written once its last call in flight has ended;
* a ``compile``: the optimizer's hook (:mod:`dspex.optimizers`) records it;
* a ``dspy.Evaluate`` call: a trial of role ``evaluation`` with a result per example
  (the exception behind each failed one included), unless it already runs for a trial
  that is not a compile (an optimizer's candidate, scored by its hook);
* calls nobody could attribute (several experiments open, a thread without context):
  a warning on the experiment, with their number and threads.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

from dspex.capture.context import RECORDER_KEY, active_recorder, pop, push
from dspex.capture.evaluation import evaluation_results
from dspex.capture.instrument import EVALUATE_ERRORS_KEY
from dspex.capture.program import program_name
from dspex.capture.recorder import TrialRecorder
from dspex.capture.scoring import metric_name, record_score
from dspex.journal import ExperimentJournal
from dspex.model import ExperimentStatus
from dspex.optimizers import OptimizerHook, hook_for

__all__ = ["ExperimentListener", "program_label"]

logger = logging.getLogger(__name__)


def program_label(program: Any) -> str:
    return program_name(program) if program is not None else "program"


@dataclass
class _CallsTrial:
    recorder: TrialRecorder
    in_flight: int = 0
    closing: bool = False


@dataclass
class _Evaluation:
    recorder: TrialRecorder
    token: Token[Any]
    metric: Any
    errors: dict[int, BaseException] = field(default_factory=dict)


class ExperimentListener:
    """Places the calls of one experiment that no trial is recording (see the module docs).

    Errors in here would be swallowed by DSPy's callback dispatch: each one is kept in
    :attr:`capture_errors` (the experiment block fails with the first when it ends) and
    logged, so that a gap in the record is never silent.
    """

    def __init__(self, journal: ExperimentJournal) -> None:
        self.journal = journal
        self.capture_errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._calls: _CallsTrial | None = None
        self._calls_trials: dict[str, _CallsTrial] = {}
        self._calls_count = 0
        self._compiles: dict[str, OptimizerHook] = {}
        self._evaluations: dict[str, _Evaluation] = {}
        self._unattributed: Counter[str] = Counter()
        self._unattributed_threads: set[str] = set()

    def _failed(self, what: str, exc: BaseException) -> None:
        logger.error("dspex: could not record %s: %s", what, exc)
        with self._lock:
            self.capture_errors.append(exc)

    # -- direct calls -------------------------------------------------------------------

    def calls_recorder(self, instance: Any) -> TrialRecorder | None:
        if self.journal.finished:
            return None
        with self._lock:
            current = self._calls
            if current is None:
                try:
                    current = self._open_calls_trial(instance)
                except Exception as exc:  # noqa: BLE001 - reported, see the class docs
                    self.capture_errors.append(exc)
                    logger.error("dspex: could not open a trial for direct calls: %s", exc)
                    return None
            current.in_flight += 1
            return current.recorder

    def _open_calls_trial(self, instance: Any) -> _CallsTrial:
        self._calls_count += 1
        is_program = callable(getattr(instance, "named_predictors", None))
        recorder = self.journal.new_trial(
            name=f"direct calls {self._calls_count}",
            program=instance if is_program else None,
            metadata={"role": "calls"},
        )
        calls = self._calls = self._calls_trials[recorder.trial_id] = _CallsTrial(recorder)
        return calls

    def calls_done(self, recorder: TrialRecorder) -> None:
        with self._lock:
            calls = self._calls_trials.get(recorder.trial_id)
            if calls is None:
                return
            calls.in_flight -= 1
            done = calls.closing and calls.in_flight <= 0
            if done:
                del self._calls_trials[recorder.trial_id]
        if done:
            self.journal.finish_trial(recorder)

    def end_direct_calls(self) -> None:
        """The current run of direct calls ends (a compile or an evaluation starts): its
        trial is written as soon as its calls in flight have ended."""
        with self._lock:
            calls, self._calls = self._calls, None
            if calls is None:
                return
            calls.closing = True
            done = calls.in_flight <= 0
            if done:
                del self._calls_trials[calls.recorder.trial_id]
        if done:
            self.journal.finish_trial(calls.recorder)

    # -- compiles -------------------------------------------------------------------------

    def compile_started(self, call_id: str, optimizer: Any, inputs: dict[str, Any]) -> None:
        self.end_direct_calls()
        try:  # a hook's own failures put it in degraded mode; this is a failure to start one
            hook = hook_for(self.journal, optimizer, inputs)
            hook.start()
        except Exception as exc:
            self._failed(f"the compile of {type(optimizer).__name__}", exc)
            raise
        with self._lock:
            self._compiles[call_id] = hook

    def compile_finished(self, call_id: str, outputs: Any, exception: BaseException | None) -> None:
        with self._lock:
            hook = self._compiles.pop(call_id, None)
        if hook is None:
            return
        try:
            hook.finish(outputs, exception)
        except Exception as exc:
            self._failed(f"the end of the compile of {hook.name}", exc)
            raise
        finally:
            with self._lock:
                self.capture_errors.extend(hook.capture_errors)

    # -- dspy.Evaluate --------------------------------------------------------------------

    def evaluate_started(self, call_id: str, evaluate: Any, inputs: dict[str, Any]) -> None:
        recorder = active_recorder()
        if recorder is not None and self.journal.trial_role(recorder.trial_id) != "compile":
            return  # already recorded as part of a trial (a candidate's, or the user's)
        if recorder is None:
            self.end_direct_calls()
        try:
            self._evaluations[call_id] = self._open_evaluation(evaluate, inputs, recorder)
        except Exception as exc:
            self._failed("a dspy.Evaluate call", exc)
            raise

    def _open_evaluation(
        self, evaluate: Any, inputs: dict[str, Any], compile_recorder: TrialRecorder | None
    ) -> _Evaluation:
        program = inputs.get("program")
        devset = inputs.get("devset") or getattr(evaluate, "devset", None) or []
        parent = getattr(program, "dspex_trial_id", None) or (
            compile_recorder.trial_id if compile_recorder is not None else None
        )
        recorder = self.journal.new_trial(
            name=f"dspy.Evaluate of {program_label(program)}",
            parents=(parent,) if parent else (),
            program=program,
            metadata={"role": "evaluation", "source": "dspy.Evaluate", "examples": len(devset)},
        )
        errors: dict[int, BaseException] = {}
        report: Callable[[dict[int, BaseException]], None] = errors.update
        token = push(**{RECORDER_KEY: recorder, EVALUATE_ERRORS_KEY: report})
        metric = inputs.get("metric") or getattr(evaluate, "metric", None)
        return _Evaluation(recorder, token, metric, errors)

    def evaluate_finished(
        self, call_id: str, outputs: Any, exception: BaseException | None
    ) -> None:
        evaluation = self._evaluations.pop(call_id, None)
        if evaluation is None:
            return
        pop(evaluation.token)
        try:
            self._close_evaluation(evaluation, outputs, exception)
        except Exception as exc:
            self._failed("the results of a dspy.Evaluate call", exc)
            raise

    def _close_evaluation(
        self, evaluation: _Evaluation, outputs: Any, exception: BaseException | None
    ) -> None:
        recorder, name = evaluation.recorder, metric_name(evaluation.metric)
        results = evaluation_results(recorder, outputs, name, evaluation.errors)
        score = record_score(recorder, results, name, scope="dev")
        if outputs is not None and getattr(outputs, "score", None) is not None:
            self.journal.update_trial(recorder, metadata={"dspy_score": outputs.score})
        self.journal.finish_trial(
            recorder,
            example_results=results,
            score=score.value,
            score_scope=score.scope,
            error=exception,
        )

    # -- what could not be attributed ---------------------------------------------------

    def warn(self, message: str) -> None:
        self.journal.warn(message)

    def unattributed(self, what: str, thread: str) -> None:
        with self._lock:
            self._unattributed[what] += 1
            self._unattributed_threads.add(thread)

    # -- the end ------------------------------------------------------------------------

    def close(self, status: ExperimentStatus, error: BaseException | None = None) -> None:
        """Before the journal seals the experiment: end what is still open, say what was
        not recorded."""
        cause = error or RuntimeError(f"experiment ended ({status.value})")
        with self._lock:
            compiles = list(self._compiles.values())
            self._compiles.clear()
            evaluations = list(self._evaluations.values())
            self._evaluations.clear()
        for hook in compiles:  # restore DSPy internals whatever happened
            hook.finish(None, cause)
            self.capture_errors.extend(hook.capture_errors)
        for evaluation in evaluations:
            pop(evaluation.token)
        self.end_direct_calls()
        with self._lock:
            running = list(self._calls_trials.values())
            self._calls_trials.clear()
        for calls in running:
            self.journal.warn(
                f"{calls.in_flight} direct call(s) were still running when the experiment "
                "ended; what they did after that is not recorded"
            )
            self.journal.finish_trial(calls.recorder)
        if self._unattributed:
            counts = ", ".join(f"{n} x {what}" for what, n in sorted(self._unattributed.items()))
            threads = ", ".join(sorted(self._unattributed_threads))
            self.journal.warn(
                f"not recorded: {counts} on thread(s) {threads}, which carry no dspex context "
                "while several experiments were open in this process; start such threads "
                "inside the experiment with contextvars.copy_context().run, or run one "
                "experiment at a time"
            )
