"""``dspex.autolog()``: record every ``compile`` and every ``dspy.Evaluate`` call, no code changes.

    import dspy, dspex
    dspex.autolog()                      # once, next to dspy.configure(...)
    compiled = dspy.BootstrapFewShot(metric=exact).compile(program, trainset=train)
    # -> an experiment "BootstrapFewShot: qa" with the optimizer, its settings, its trials
    dspy.Evaluate(devset=dev, metric=exact, num_threads=8)(compiled)
    # -> an experiment "Evaluate: qa" with one trial: every LM call, a result per example
    dspex.autolog(disable=True)          # removes everything autolog installed

What becomes what, outside any ``dspex.experiment`` (inside one, the experiment records
everything itself, autolog or not):

- a ``compile``: a new experiment for that compile (started when compile starts, sealed
  when it ends: completed, failed if compile raised, interrupted on Ctrl-C); inside it,
  everything is recorded as inside an experiment block (``dspy.Evaluate`` calls become
  trials of it);
- a ``dspy.Evaluate`` call: a new experiment with one trial.

Capture never breaks the program: when recording fails (a store that cannot be written,
say), dspex warns with a ``RuntimeWarning`` and the program's result is unchanged.
"""

from __future__ import annotations

import logging
import threading
import warnings
from contextvars import Token
from dataclasses import dataclass
from typing import Any

from dspex.capture import instrument
from dspex.capture.callback import shared_callback
from dspex.capture.context import LISTENER_KEY, pop, push, set_fallback_listener
from dspex.capture.dspy_bridge import ensure_callback, remove_callback
from dspex.capture.recorder import TrialRecorder
from dspex.journal import ExperimentJournal
from dspex.model import ExperimentStatus
from dspex.store import ResultStore
from dspex.tracking.listener import ExperimentListener, program_label

__all__ = ["AutologListener", "autolog", "autolog_listener"]

logger = logging.getLogger(__name__)

TAG = "autolog"


@dataclass
class _Run:
    """One compile or evaluation autolog records as an experiment of its own."""

    journal: ExperimentJournal
    listener: ExperimentListener
    token: Token[Any] | None = None


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


class AutologListener:
    """The fallback listener (:func:`dspex.capture.context.set_fallback_listener`): opens an
    experiment per compile and per ``dspy.Evaluate`` call made outside any experiment.

    Every method is safe to call with any input: failures become a warning, never an
    exception into DSPy (which would only log it) or the user's program.
    """

    def __init__(self, store: ResultStore | None = None) -> None:
        self.store = store
        self._runs: dict[str, _Run] = {}

    def calls_recorder(self, instance: Any) -> TrialRecorder | None:
        return None  # direct calls outside experiments are not recorded by autolog

    def calls_done(self, recorder: TrialRecorder) -> None:
        pass

    def unattributed(self, what: str, thread: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass  # outside every experiment: nothing to put a warning on

    def _open(self, name: str, program: Any, kind: str) -> _Run:
        journal = ExperimentJournal(
            name, program=program, store=self.store, tags=(TAG,), metadata={TAG: kind}
        )
        journal.start()
        run = _Run(journal, ExperimentListener(journal))
        run.token = push(**{LISTENER_KEY: run.listener})
        return run

    def _close(self, run: _Run, what: str, exception: BaseException | None) -> None:
        problems: list[tuple[str, BaseException]] = []
        if run.token is not None:
            pop(run.token)
            run.token = None
        try:
            run.listener.close(_status(exception), exception)
        except Exception as exc:  # noqa: BLE001
            problems.append((what, exc))
        problems.extend((what, e) for e in run.listener.capture_errors)
        try:
            run.journal.finish(_status(exception), exception)
        except Exception as exc:  # noqa: BLE001
            problems.append((f"experiment {run.journal.experiment.name!r}", exc))
        # warnings last: under a warnings-as-errors filter a warning raises
        for where, problem in problems:
            _warn(where, problem)

    def _abandon(self, run: _Run | None, what: str, exc: BaseException) -> None:
        """After a capture failure: undo the run's token and close the experiment it opened
        (as failed, naming the capture error), then warn."""
        if run is not None:
            if run.token is not None:
                pop(run.token)
                run.token = None
            try:
                run.listener.close(ExperimentStatus.FAILED, exc)
                run.journal.finish(ExperimentStatus.FAILED, exc)
            except Exception:  # noqa: BLE001 - the store may be what failed; warned below
                logger.debug("dspex autolog: could not close experiment %s", run.journal.id)
        _warn(what, exc)

    # -- compile ----------------------------------------------------------------------

    def compile_started(self, call_id: str, optimizer: Any, inputs: dict[str, Any]) -> None:
        what = f"the compile of {type(optimizer).__name__}"
        run: _Run | None = None
        try:
            student = inputs.get("student")
            run = self._open(
                f"{type(optimizer).__name__}: {program_label(student)}", student, "compile"
            )
            run.listener.compile_started(call_id, optimizer, inputs)
            self._runs[call_id] = run
        except Exception as exc:  # noqa: BLE001 - capture must not break compile
            self._abandon(run, what, exc)

    def compile_finished(self, call_id: str, outputs: Any, exception: BaseException | None) -> None:
        run = self._runs.pop(call_id, None)
        if run is None:
            return
        try:
            # the optimizer hook resets its own token first, then ours goes
            run.listener.compile_finished(call_id, outputs, exception)
        except Exception:  # noqa: BLE001 - kept in capture_errors, warned by _close
            pass
        self._close(run, f"the compile in {run.journal.experiment.name!r}", exception)

    # -- dspy.Evaluate ------------------------------------------------------------------

    def evaluate_started(self, call_id: str, evaluate: Any, inputs: dict[str, Any]) -> None:
        run: _Run | None = None
        try:
            program = inputs.get("program")
            run = self._open(f"Evaluate: {program_label(program)}", program, "evaluate")
            run.listener.evaluate_started(call_id, evaluate, inputs)
            self._runs[call_id] = run
        except Exception as exc:  # noqa: BLE001
            self._abandon(run, "a dspy.Evaluate call", exc)

    def evaluate_finished(
        self, call_id: str, outputs: Any, exception: BaseException | None
    ) -> None:
        run = self._runs.pop(call_id, None)
        if run is None:
            return
        try:
            run.listener.evaluate_finished(call_id, outputs, exception)
        except Exception:  # noqa: BLE001 - kept in capture_errors, warned by _close
            pass
        self._close(run, f"experiment {run.journal.experiment.name!r}", exception)


# -- installing -------------------------------------------------------------------------

_lock = threading.Lock()
_listener: AutologListener | None = None


def autolog_listener() -> AutologListener | None:
    """The listener :func:`autolog` installed, or None when autolog is off."""
    return _listener


def autolog(*, store: ResultStore | None = None, disable: bool = False) -> None:
    """Record every ``compile`` and ``dspy.Evaluate`` call from now on (see the module docs).

    ``store``: where the experiments go (default: the configured ResultStore).
    ``disable=True`` removes everything an earlier call installed. Calling it again
    while enabled only changes the store.
    """
    global _listener
    callback = shared_callback()
    with _lock:
        if disable:
            if _listener is not None:
                instrument.release()
            _listener = None
            set_fallback_listener(None)
            remove_callback(callback)
            return
        if _listener is None:
            instrument.acquire()
        _listener = AutologListener(store)
        set_fallback_listener(_listener)
        # dspy.context snapshots the callbacks in effect when entered: inside one, this
        # thread does not see the global list, so its overrides get the callback too
        ensure_callback(callback)
