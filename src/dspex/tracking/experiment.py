"""The user-facing way to record: ``dspex.experiment(...)``.

    import dspy, dspex
    with dspex.experiment("arith-rules", hypothesis="Appending rules beats demos",
                          program=program) as exp:
        program(question="What is 2 + 2?")            # a trial of direct calls
        optimized = dspy.SIMBA(metric=metric, max_steps=4).compile(program, trainset=train)
        exp.evaluate(optimized, devset, metric)       # or: await exp.aevaluate(...)
        dspy.Evaluate(devset=devset, metric=metric)(optimized)   # a trial too
    # on exit: statistics computed, experiment sealed in the configured ResultStore
    exp.experiment.best_score

Everything DSPy does inside the block is recorded, in every calling style: direct calls
(``program(...)``, ``acall``, ``asyncify``, ``batch``, ``dspy.Parallel``), ``compile``
(one trial per candidate the optimizer's hook sees), ``dspy.Evaluate``, ``exp.evaluate``,
on DSPy's threads, asyncio tasks, the harness's worker pool, and threads the block starts
itself (see :mod:`dspex.tracking.listener` for what becomes of each). An exception marks
the experiment failed, Ctrl-C interrupted; both still archive every finished trial, and
the exception propagates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextvars import Token
from types import TracebackType
from typing import Any

from dspex.capture import instrument
from dspex.capture.callback import shared_callback
from dspex.capture.context import LISTENER_KEY, close_ambient, open_ambient, pop, push
from dspex.capture.dspy_bridge import ensure_callback, pop_settings
from dspex.harness import EvaluationHarness
from dspex.journal import ExperimentJournal
from dspex.model import Experiment, ExperimentStatus, Hypothesis, Trial
from dspex.store import ResultStore
from dspex.tracking.listener import ExperimentListener
from dspex.tracking.output import dspy_output

__all__ = ["ExperimentRun", "experiment"]


class ExperimentRun:
    """A running experiment, used as a context manager (see :func:`experiment`)."""

    def __init__(self, journal: ExperimentJournal, *, pool_size: int | None = None) -> None:
        self.journal = journal
        self.harness = EvaluationHarness(journal, pool_size=pool_size)
        self.listener = ExperimentListener(journal)
        self._settings_token: Token[Any] | None = None
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
        (``dev``, ``test``...) for people; scores are compared by the examples themselves.
        """
        self.listener.end_direct_calls()
        parent = getattr(program, "dspex_trial_id", None)
        return self.harness.evaluate(
            program,
            devset,
            metric,
            name=name or _evaluation_name(parent),
            parents=(parent,) if parent else (),
            scope=scope,
        )

    async def aevaluate(
        self,
        program: Any,
        devset: Sequence[Any],
        metric: Any,
        *,
        name: str | None = None,
        scope: str = "dev",
    ) -> Trial:
        """:meth:`evaluate` for async code: examples run as tasks of the running event loop
        through ``program.acall``, with the same records."""
        self.listener.end_direct_calls()
        parent = getattr(program, "dspex_trial_id", None)
        return await self.harness.aevaluate(
            program,
            devset,
            metric,
            name=name or _evaluation_name(parent),
            parents=(parent,) if parent else (),
            scope=scope,
        )

    def __enter__(self) -> ExperimentRun:
        self.journal.start()
        self._output = dspy_output()
        self._output.__enter__()
        instrument.acquire()
        self._settings_token = ensure_callback(shared_callback())
        self._token = push(**{LISTENER_KEY: self.listener})
        open_ambient(self.listener)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        close_ambient(self.listener)
        if self._token is not None:
            pop(self._token)
            self._token = None
        if self._settings_token is not None:
            pop_settings(self._settings_token)
            self._settings_token = None
        if exc is None:
            status = ExperimentStatus.COMPLETED
        elif isinstance(exc, KeyboardInterrupt):
            status = ExperimentStatus.INTERRUPTED
        else:
            status = ExperimentStatus.FAILED
        try:
            self.listener.close(status, exc)
        finally:
            self.harness.close()
            instrument.release()  # DSPy as it was, once the last experiment has ended
            self._output.__exit__(None, None, None)
        capture_error = self.listener.capture_errors[0] if self.listener.capture_errors else None
        if exc is None and capture_error is not None:
            self.journal.finish(ExperimentStatus.FAILED, capture_error)
            raise capture_error
        self.journal.finish(status, exc)


def _evaluation_name(parent: str | None) -> str:
    return "evaluation of " + (f"candidate {parent}" if parent else "program")


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
    experiment_id: str | None = None,
) -> ExperimentRun:
    """Record everything inside a ``with`` block as one experiment (see the module docs).

    ``experiment_id`` records under that id instead of a new one: an id whose earlier
    run never sealed (its process died) is replaced whole when this run seals it. A
    sealed id cannot be recorded again (:class:`dspex.ImmutableRecordError`).
    """
    journal = ExperimentJournal(
        name,
        program=program,
        program_name=program_name,
        hypothesis=hypothesis,
        store=store,
        tags=tags,
        metadata=metadata,
        experiment_id=experiment_id,
    )
    return ExperimentRun(journal, pool_size=pool_size)
