"""The user-facing way to record: ``dspex.experiment(...)`` and ``dspex.autolog()``.

    import dspy, dspex
    with dspex.experiment("arith-rules", hypothesis="Appending rules beats demos",
                          program=program) as exp:
        optimized = dspy.SIMBA(metric=metric, max_steps=4).compile(program, trainset=train)
        exp.evaluate(optimized, devset, metric)
    # on exit: statistics computed, experiment sealed in the configured ResultStore
    exp.experiment.best_score

Every ``compile`` inside the block is recorded by the optimizer's hook (one trial per
candidate it evaluates); ``exp.evaluate`` runs the EvaluationHarness. An exception
marks the experiment failed, Ctrl-C interrupted; both still archive every finished
trial, and the exception propagates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextvars import Token
from types import TracebackType
from typing import Any

from dspy.dsp.utils.settings import thread_local_overrides

from dspex.capture.context import JOURNAL_KEY
from dspex.harness import EvaluationHarness
from dspex.harness.example import ensure_callback_installed, with_callback
from dspex.journal import ExperimentJournal
from dspex.model import Experiment, ExperimentStatus, Hypothesis, Trial
from dspex.store import ResultStore

__all__ = ["ExperimentRun", "experiment"]


class ExperimentRun:
    """A running experiment, used as a context manager (see :func:`experiment`)."""

    def __init__(self, journal: ExperimentJournal, *, pool_size: int | None = None) -> None:
        self.journal = journal
        self.harness = EvaluationHarness(journal, pool_size=pool_size)
        self._token: Token[Any] | None = None

    @property
    def id(self) -> str:
        return self.journal.id

    @property
    def experiment(self) -> Experiment:
        """The record so far; after the block, the sealed experiment."""
        return self.journal.experiment

    @property
    def trials(self) -> list[Trial]:
        return self.journal.trials

    @property
    def best_trial_id(self) -> str | None:
        return self.experiment.best_trial_id

    def evaluate(
        self,
        program: Any,
        devset: Sequence[Any],
        metric: Any,
        *,
        name: str | None = None,
        scope: str = "dev",
    ) -> Trial:
        """Evaluate ``program`` on ``devset`` with ``metric`` as a new trial of this experiment.

        A program returned by a recorded optimizer remembers the trial it came from;
        that trial becomes the new trial's parent. ``scope`` names the example set
        (``dev``, ``test``) in views; the trial's ``score_scope`` records which examples.
        """
        parent = getattr(program, "dspex_trial_id", None)
        return self.harness.evaluate(
            program,
            devset,
            metric,
            name=name or ("evaluation of " + (f"candidate {parent}" if parent else "program")),
            parents=(parent,) if parent else (),
            scope=scope,
        )

    def __enter__(self) -> ExperimentRun:
        ensure_callback_installed()
        self.journal.start()
        overrides = thread_local_overrides.get()
        self._token = thread_local_overrides.set(
            type(overrides)({**with_callback(dict(overrides)), JOURNAL_KEY: self.journal})
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            thread_local_overrides.reset(self._token)
            self._token = None
        capture_error = self.journal.capture_errors[0] if self.journal.capture_errors else None
        if exc is None and capture_error is not None:
            self.journal.finish(ExperimentStatus.FAILED, capture_error)
            raise capture_error
        if exc is None:
            status = ExperimentStatus.COMPLETED
        elif isinstance(exc, KeyboardInterrupt):
            status = ExperimentStatus.INTERRUPTED
        else:
            status = ExperimentStatus.FAILED
        self.journal.finish(status, exc)


def experiment(
    name: str,
    *,
    hypothesis: str | Hypothesis | None = None,
    program: Any = None,
    program_name: str | None = None,
    store: ResultStore | None = None,
    tags: Iterable[str] = (),
    metadata: dict[str, Any] | None = None,
    pool_size: int | None = None,
) -> ExperimentRun:
    """Record everything inside a ``with`` block as one experiment (see the module docs)."""
    journal = ExperimentJournal(
        name,
        program=program,
        program_name=program_name,
        hypothesis=hypothesis,
        store=store,
        tags=tags,
        metadata=metadata,
    )
    return ExperimentRun(journal, pool_size=pool_size)
