"""The base optimizer hook: one trial for the whole compile, optimizer start and end events."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from contextvars import Token
from typing import Any

from dspex.capture.callback import error_payload
from dspex.capture.context import RECORDER_KEY, active_recorder, pop, push
from dspex.capture.jsonable import jsonable
from dspex.capture.program import variables_of
from dspex.capture.recorder import TrialRecorder
from dspex.journal import ExperimentJournal
from dspex.model import OptimizerInfo
from dspex.optimizers.units import changes_between
from dspex.redact import redact

__all__ = ["PRIVATE_MARK", "RESULT_MARK", "GenericHook", "OptimizerHook", "optimizer_info"]

_SIMPLE = (str, int, float, bool, type(None))

#: The attribute hooks set on candidate programs while a compile runs (copies keep it).
PRIVATE_MARK = "_dspex_candidate"
#: The attribute naming the candidate trial of the program a recorded compile returns.
RESULT_MARK = "dspex_trial_id"


def optimizer_info(optimizer: Any) -> OptimizerInfo:
    """Name and simple settings (numbers, strings, flags; callables by name) of an optimizer.

    Secrets (``wandb_api_key``, a URL with a password...) are hidden before they reach the
    record.
    """
    settings: dict[str, Any] = {}
    for key, value in sorted(vars(optimizer).items()):
        if key.startswith("_"):
            continue
        if isinstance(value, _SIMPLE):
            settings[key] = jsonable(value)
        elif callable(value) and hasattr(value, "__name__") and not inspect.isclass(value):
            settings[key] = f"<{value.__name__}>"
    return OptimizerInfo(name=type(optimizer).__name__, settings=redact(settings))


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
        # The trial whose program compile returns (set by subclasses); default: the compile.
        self.result_trial_id: str | None = None
        self.info = optimizer_info(optimizer)
        # Errors of recording that the optimizer's own machinery swallowed (GEPA drops
        # exceptions of its callbacks): the experiment fails with them when it ends.
        self.capture_errors: list[BaseException] = []

    @property
    def name(self) -> str:
        return self.info.name

    #: DSPy thread-local settings key under which this hook is found by module patches
    #: (see :mod:`dspex.optimizers.patching`); None if it patches nothing.
    hook_key: str | None = None

    def start(self) -> None:
        """Open the compile trial, make it the active recorder, and :meth:`install`.

        A compile nested in another recorded compile (BootstrapFewShot inside MIPROv2)
        gets the outer compile's trial as its parent. If :meth:`install` fails (e.g.
        :class:`~dspex.errors.UnsupportedOptimizerVersion`), everything is undone, the
        trial is closed as failed, and the error propagates.
        """
        self.journal.set_optimizer(self.info)
        outer = active_recorder()
        self.recorder = self.journal.new_trial(
            name=f"{self.name} compile",
            parents=(outer.trial_id,) if outer is not None else (),
            program=self.student,
            metadata={"role": "compile", "optimizer": self.name},
        )
        self.recorder.emit(
            "orchestration",
            "optimizer_start",
            {"optimizer": self.name, "settings": self.info.settings},
        )
        extra = {self.hook_key: self} if self.hook_key else {}
        self._token = push(**{RECORDER_KEY: self.recorder, **extra})
        try:
            self.install()
        except BaseException as exc:
            try:
                self.uninstall()
            finally:
                self._reset_overrides()
            self.recorder.emit("orchestration", "error", error_payload(exc) or {})
            self.journal.finish_trial(self.recorder, error=exc)
            raise

    def _reset_overrides(self) -> None:
        if self._token is not None:
            pop(self._token)
            self._token = None

    def end_payload(self, outputs: Any, exception: BaseException | None) -> dict[str, Any]:
        """Extra ``optimizer_end`` fields (``best_candidate``, ``best_score``) of a subclass."""
        return {}

    def finish(self, outputs: Any, exception: BaseException | None) -> None:
        try:
            self.uninstall()
        finally:
            self._reset_overrides()
        assert self.recorder is not None
        self.recorder.emit(
            "orchestration",
            "optimizer_end",
            {
                "optimizer": self.name,
                "ok": exception is None,
                "error": None if exception is None else f"{type(exception).__name__}: {exception}",
                **self.end_payload(outputs, exception),
            },
        )
        trial_id = self.result_trial_id or self.recorder.trial_id
        self.journal.finish_trial(self.recorder, error=exception)
        remove_marks(outputs, self.optimizer, keep=self.inputs.values())
        if exception is None and outputs is not None:
            try:
                setattr(outputs, RESULT_MARK, trial_id)
            except AttributeError:  # not a module we can annotate (a plain value)
                pass

    def record_result(self, program: Any, strategy: str) -> None:
        """The compile's result as a ``candidate_created`` on the compile trial, with the
        changes from the student to ``program`` (None: the result is not a program whose
        variables say what changed); the trial's variables become ``program``'s."""
        assert self.recorder is not None
        changes: list[dict[str, Any]] = []
        if program is not None:
            name = self.journal.program_name
            before, after = variables_of(self.student, name), variables_of(program, name)
            changes = changes_between(before, after)
            self.journal.update_trial(self.recorder, program=program)
        self.recorder.emit(
            "orchestration",
            "candidate_created",
            {
                "optimizer": self.name,
                "candidate": self.recorder.trial_id,
                "name": f"{self.name} result",
                "parents": [],
                "strategy": strategy,
                "changes": changes,
            },
        )

    def install(self) -> None:
        """Wrap the optimizer's internals (nothing for the generic hook)."""

    def uninstall(self) -> None:
        """Undo :meth:`install`; must restore everything even after a failed compile."""


class GenericHook(OptimizerHook):
    """For optimizers without a dedicated hook: the compile as one trial."""


def remove_marks(*roots: Any, keep: Iterable[Any] = ()) -> None:
    """Remove what dspex put on programs from every module reachable from ``roots``.

    Optimizers copy candidate programs (keeping the hooks' private mark) into what they
    hand back: ``candidate_programs``, ``trial_logs``, ``mb_candidate_programs``... Every
    module reachable through module attributes, dict values and sequence items loses the
    private mark, and the result mark of a nested compile; ``keep`` (the caller's own
    programs, which may carry the result mark of an earlier compile) keep the result mark.
    """
    import dspy

    kept = {id(obj) for obj in keep}
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if isinstance(obj, _SIMPLE) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, dspy.BaseModule):
            attributes = vars(obj)
            attributes.pop(PRIVATE_MARK, None)
            if id(obj) not in kept:
                attributes.pop(RESULT_MARK, None)
            stack.extend(attributes.values())
        elif isinstance(obj, dspy.teleprompt.Teleprompter):
            stack.extend(vars(obj).values())
