"""The base optimizer hook: one trial for the whole compile, optimizer start and end events."""

from __future__ import annotations

import inspect
from contextvars import Token
from typing import TYPE_CHECKING, Any

from dspy.dsp.utils.settings import thread_local_overrides

from dspex.capture.context import RECORDER_KEY
from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import TrialRecorder
from dspex.model import OptimizerInfo

if TYPE_CHECKING:
    from dspex.journal import ExperimentJournal

__all__ = ["GenericHook", "OptimizerHook", "optimizer_info"]

_SIMPLE = (str, int, float, bool, type(None))


def optimizer_info(optimizer: Any) -> OptimizerInfo:
    """Name and simple settings (numbers, strings, flags; callables by name) of an optimizer."""
    settings: dict[str, Any] = {}
    for key, value in sorted(vars(optimizer).items()):
        if key.startswith("_"):
            continue
        if isinstance(value, _SIMPLE):
            settings[key] = jsonable(value)
        elif callable(value) and hasattr(value, "__name__") and not inspect.isclass(value):
            settings[key] = f"<{value.__name__}>"
    return OptimizerInfo(name=type(optimizer).__name__, settings=settings)


class OptimizerHook:
    """Base of every hook: opens a compile trial and makes it the active recorder.

    Subclasses override :meth:`install` / :meth:`uninstall` to wrap the optimizer's
    internals, and open further trials for the candidates it evaluates.
    """

    def __init__(self, journal: ExperimentJournal, optimizer: Any, inputs: dict[str, Any]) -> None:
        self.journal = journal
        self.optimizer = optimizer
        self.inputs = inputs
        self.student = inputs.get("student")
        self.recorder: TrialRecorder | None = None
        self._token: Token[Any] | None = None
        self.info = optimizer_info(optimizer)

    @property
    def name(self) -> str:
        return self.info.name

    def start(self) -> None:
        self.journal.set_optimizer(self.info)
        self.recorder = self.journal.new_trial(
            name=f"{self.name} compile", program=self.student, metadata={"role": "compile"}
        )
        self.recorder.emit(
            "orchestration",
            "optimizer_start",
            {"optimizer": self.name, "settings": self.info.settings},
        )
        overrides = thread_local_overrides.get()
        self._token = thread_local_overrides.set(
            type(overrides)({**overrides, RECORDER_KEY: self.recorder})
        )
        self.install()

    def finish(self, outputs: Any, exception: BaseException | None) -> None:
        try:
            self.uninstall()
        finally:
            if self._token is not None:
                thread_local_overrides.reset(self._token)
                self._token = None
        assert self.recorder is not None
        self.recorder.emit(
            "orchestration",
            "optimizer_end",
            {
                "optimizer": self.name,
                "ok": exception is None,
                "error": None if exception is None else f"{type(exception).__name__}: {exception}",
            },
        )
        self.journal.finish_trial(self.recorder, error=exception)

    def install(self) -> None:
        """Wrap the optimizer's internals (nothing for the generic hook)."""

    def uninstall(self) -> None:
        """Undo :meth:`install`; must restore everything even after a failed compile."""


class GenericHook(OptimizerHook):
    """For optimizers without a dedicated hook: the compile as one trial."""
