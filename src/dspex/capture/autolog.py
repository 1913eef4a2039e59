"""``dspex.autolog()``: record every ``compile`` and every ``dspy.Evaluate`` call, no code changes.

    import dspy, dspex
    dspex.autolog()                      # once, next to dspy.configure(...)
    compiled = dspy.BootstrapFewShot(metric=exact).compile(program, trainset=train)
    # -> an experiment "BootstrapFewShot: qa" with the optimizer, its settings, its trials
    dspy.Evaluate(devset=dev, metric=exact, num_threads=8)(compiled)
    # -> an experiment "Evaluate: qa" with one trial: every LM call, a result per example
    dspex.autolog(disable=True)          # removes everything autolog installed

What becomes what:

- a ``compile`` outside any ``dspex.experiment``: a new experiment for that compile
  (started when compile starts, sealed when it ends: completed, failed if compile
  raised, interrupted on Ctrl-C); the optimizer hooks record it as inside an experiment;
- a ``dspy.Evaluate`` call outside any trial: a new experiment with one trial;
- a ``dspy.Evaluate`` call inside a compile or a ``dspex.experiment``: a new trial of
  that experiment (its parent: the trial the program came from, when known);
- a ``dspy.Evaluate`` call that already runs for a trial (an optimizer hook's candidate):
  left to that trial.

Capture never breaks the program: when recording fails (a store that cannot be
written, say), dspex warns with a ``RuntimeWarning`` and the program's result is unchanged.
"""

from __future__ import annotations

import logging
import threading
import warnings
from contextvars import Token
from typing import Any

from dspy.dsp.utils.settings import global_lock, main_thread_config, thread_local_overrides

from dspex.capture.context import JOURNAL_KEY, RECORDER_KEY, active_journal, active_recorder
from dspex.capture.evaluate_results import record_example_results, record_score
from dspex.capture.program import program_name
from dspex.capture.recorder import TrialRecorder
from dspex.journal import ExperimentJournal
from dspex.model import ExperimentStatus
from dspex.store import ResultStore

__all__ = ["AutologHandler", "autolog", "autolog_handler"]

logger = logging.getLogger(__name__)

TAG = "autolog"


class _Run:
    """One compile or evaluation autolog is recording: what to undo and finish at its end."""

    __slots__ = ("journal", "owns_journal", "recorder", "token", "metric", "devset")

    def __init__(self, journal: ExperimentJournal, owns_journal: bool) -> None:
        self.journal = journal
        self.owns_journal = owns_journal
        self.recorder: TrialRecorder | None = None
        self.token: Token[Any] | None = None
        self.metric: Any = None
        self.devset: Any = None

    def activate(self, **keys: Any) -> None:
        overrides = thread_local_overrides.get()
        self.token = thread_local_overrides.set(type(overrides)({**overrides, **keys}))

    def deactivate(self) -> None:
        if self.token is not None:
            thread_local_overrides.reset(self.token)
            self.token = None


def _status(exception: BaseException | None) -> ExperimentStatus:
    if exception is None:
        return ExperimentStatus.COMPLETED
    if isinstance(exception, KeyboardInterrupt):
        return ExperimentStatus.INTERRUPTED
    return ExperimentStatus.FAILED


def _warn(what: str, exc: BaseException) -> None:
    message = (
        f"dspex autolog could not record {what}: {type(exc).__name__}: {exc}. "
        "The program ran as usual; check the configured store (dspex.configure(store=...))."
    )
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=2)


class AutologHandler:
    """What :class:`~dspex.capture.DspexCallback` calls for compiles and evaluations.

    Every method is safe to call with any input: failures become a warning, never an
    exception into DSPy (which would only log it) or the user's program.
    """

    def __init__(self, store: ResultStore | None = None) -> None:
        self.store = store
        self._runs: dict[str, _Run] = {}

    # -- compile ----------------------------------------------------------------------

    def compile_started(self, call_id: str, optimizer: Any, inputs: dict[str, Any]) -> None:
        student = inputs.get("student")
        run: _Run | None = None
        try:
            name = f"{type(optimizer).__name__}: {_program_label(student)}"
            journal = ExperimentJournal(
                name, program=student, store=self.store, tags=(TAG,), metadata={TAG: "compile"}
            )
            run = self._runs[call_id] = _Run(journal, owns_journal=True)
            journal.start()
            run.activate(**{JOURNAL_KEY: journal})
            journal.compile_started(call_id, optimizer, inputs)
        except Exception as exc:  # noqa: BLE001 - capture must not break compile
            self._runs.pop(call_id, None)
            _abandon(run, exc)
            _warn(f"the compile of {type(optimizer).__name__}", exc)

    def compile_finished(self, call_id: str, outputs: Any, exception: BaseException | None) -> None:
        run = self._runs.pop(call_id, None)
        if run is None:
            return
        problems: list[tuple[str, Exception]] = []
        try:
            try:
                # the optimizer hook resets its own token first, then ours goes
                run.journal.compile_finished(call_id, outputs, exception)
            finally:
                run.deactivate()
        except Exception as exc:  # noqa: BLE001
            problems.append((f"the end of compile in {run.journal.experiment.name!r}", exc))
        try:
            run.journal.finish(_status(exception), exception)
        except Exception as exc:  # noqa: BLE001
            problems.append((f"experiment {run.journal.experiment.name!r}", exc))
        # warnings last: under a warnings-as-errors filter a warning raises
        for what, problem in problems:
            _warn(what, problem)

    # -- dspy.Evaluate ------------------------------------------------------------------

    def evaluate_started(self, call_id: str, evaluate: Any, inputs: dict[str, Any]) -> None:
        run: _Run | None = None
        try:
            run = self._evaluation_run(evaluate, inputs)
            if run is not None:
                self._runs[call_id] = run
                run.activate(**{JOURNAL_KEY: run.journal, RECORDER_KEY: run.recorder})
        except Exception as exc:  # noqa: BLE001
            self._runs.pop(call_id, None)
            _abandon(run, exc)
            _warn("a dspy.Evaluate call", exc)

    def _evaluation_run(self, evaluate: Any, inputs: dict[str, Any]) -> _Run | None:
        program = inputs.get("program")
        journal, recorder = active_journal(), active_recorder()
        if recorder is not None and (
            journal is None or journal.trial_role(recorder.trial_id) != "compile"
        ):
            return None  # already recorded as part of a trial (a candidate's, or the user's)
        if journal is None:
            journal = ExperimentJournal(
                f"Evaluate: {_program_label(program)}",
                program=program,
                store=self.store,
                tags=(TAG,),
                metadata={TAG: "evaluate"},
            )
            journal.start()
            run = _Run(journal, owns_journal=True)
        else:
            run = _Run(journal, owns_journal=False)
        try:
            run.metric = inputs.get("metric") or getattr(evaluate, "metric", None)
            run.devset = list(inputs.get("devset") or getattr(evaluate, "devset", None) or [])
            parent = getattr(program, "dspex_trial_id", None)
            run.recorder = journal.new_trial(
                name=f"dspy.Evaluate of {_program_label(program)}",
                parents=(parent,) if parent else (),
                program=program,
                metadata={
                    "role": "evaluation",
                    "source": "dspy.Evaluate",
                    "examples": len(run.devset),
                },
            )
        except Exception as exc:
            _abandon(run, exc)
            raise
        return run

    def evaluate_finished(
        self, call_id: str, outputs: Any, exception: BaseException | None
    ) -> None:
        run = self._runs.pop(call_id, None)
        if run is None:
            return
        run.deactivate()
        try:
            assert run.recorder is not None
            results = record_example_results(run.recorder, outputs, run.metric)
            score = record_score(run.recorder, results, run.metric)
            if outputs is not None and getattr(outputs, "score", None) is not None:
                run.journal.update_trial(run.recorder, metadata={"dspy_score": outputs.score})
            run.journal.finish_trial(
                run.recorder, example_results=results, score=score, error=exception
            )
            if run.owns_journal:
                run.journal.finish(_status(exception), exception)
        except Exception as exc:  # noqa: BLE001
            _abandon(run, exc)
            _warn(f"experiment {run.journal.experiment.name!r}", exc)


def _abandon(run: _Run | None, exc: BaseException) -> None:
    """After a capture failure: undo the run's token, and close the experiment it opened
    (as failed, naming the capture error) so that no open record is left."""
    if run is None:
        return
    run.deactivate()
    if run.owns_journal:
        try:
            run.journal.finish(ExperimentStatus.FAILED, exc)
        except Exception:  # noqa: BLE001 - the store may be what failed; warned already
            logger.debug("dspex autolog: could not close experiment %s", run.journal.id)


def _program_label(program: Any) -> str:
    return program_name(program) if program is not None else "program"


# -- installing -------------------------------------------------------------------------

_lock = threading.Lock()
_added_globally = False
_added_to_thread = False


def autolog_handler() -> AutologHandler | None:
    """The handler :func:`autolog` installed, or None when autolog is off."""
    from dspex.harness.example import shared_callback

    return shared_callback().autolog


def autolog(*, store: ResultStore | None = None, disable: bool = False) -> None:
    """Record every ``compile`` and ``dspy.Evaluate`` call from now on (see the module docs).

    ``store``: where the experiments go (default: the configured ResultStore).
    ``disable=True`` removes everything an earlier call installed. Calling it again
    while enabled only changes the store.
    """
    from dspex.harness.example import shared_callback

    global _added_globally, _added_to_thread
    callback = shared_callback()
    with _lock:
        if disable:
            callback.autolog = None
            if _added_globally:
                _set_global_callbacks([c for c in _global_callbacks() if c is not callback])
            if _added_to_thread:
                _drop_from_thread_overrides(callback)
            _added_globally = _added_to_thread = False
            return
        callback.autolog = AutologHandler(store)
        if callback not in _global_callbacks():
            _set_global_callbacks([*_global_callbacks(), callback])
            _added_globally = True
        # dspy.context snapshots the callbacks in effect when entered: inside one, this
        # thread does not see the global list, so its overrides get the callback too
        overrides = thread_local_overrides.get()
        in_effect = list(overrides.get("callbacks") or [])
        if "callbacks" in overrides and callback not in in_effect:
            thread_local_overrides.set(
                type(overrides)({**overrides, "callbacks": [*in_effect, callback]})
            )
            _added_to_thread = True


def _global_callbacks() -> list[Any]:
    return list(main_thread_config.get("callbacks") or [])


def _set_global_callbacks(callbacks: list[Any]) -> None:
    import dspy

    try:
        dspy.settings.configure(callbacks=callbacks)
    except RuntimeError:
        # dspy.configure is reserved to the thread that first called it; autolog() is a
        # one-time switch that may run elsewhere (a notebook cell on another thread), and
        # this is the same single assignment configure() would make.
        with global_lock:
            main_thread_config["callbacks"] = callbacks


def _drop_from_thread_overrides(callback: Any) -> None:
    overrides = thread_local_overrides.get()
    in_effect = list(overrides.get("callbacks") or [])
    if callback in in_effect:
        thread_local_overrides.set(
            type(overrides)({**overrides, "callbacks": [c for c in in_effect if c is not callback]})
        )
