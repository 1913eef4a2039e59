"""The base optimizer hook: one trial for the whole compile, optimizer start and end events."""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from collections.abc import Iterable
from contextvars import Token
from typing import Any, ClassVar

from dspex.capture.context import RECORDER_KEY, active_recorder, lookup, pop, push
from dspex.capture.instrument import HOOKS_KEY, unavailable, with_hook
from dspex.capture.jsonable import jsonable
from dspex.capture.program import variables_of
from dspex.capture.recorder import TrialRecorder
from dspex.config import get_settings
from dspex.errors import CaptureError, UnsupportedOptimizerVersion
from dspex.journal import ExperimentJournal
from dspex.model import EventKind, OptimizerInfo
from dspex.model.payloads import Change, OptimizerEndPayload, OptimizerOutcome
from dspex.optimizers.units import changes_between
from dspex.redact import redact

__all__ = [
    "PRIVATE_MARK",
    "RESULT_MARK",
    "GenericHook",
    "OptimizerHook",
    "Unrecognised",
    "degraded_message",
    "optimizer_info",
    "strict",
]

logger = logging.getLogger(__name__)

_SIMPLE = (str, int, float, bool, type(None))

#: The attribute hooks set on candidate programs while a compile runs (copies keep it).
PRIVATE_MARK = "_dspex_candidate"
#: The attribute naming the candidate trial of the program a recorded compile returns.
RESULT_MARK = "dspex_trial_id"


class Unrecognised(Exception):
    """Something a hook relies on is missing in the installed DSPy, or no longer means what
    the hook reads from it. ``piece`` names it (``SIMBA.compile local variable bucket_idx``)."""

    def __init__(self, message: str, *, piece: str | None = None) -> None:
        super().__init__(message)
        self.piece = piece


def _piece_of(exc: BaseException, default: str) -> str:
    return getattr(exc, "piece", None) or default


def strict() -> bool:
    """``capture.strict``: a degraded record fails the experiment."""
    return get_settings().capture.strict


def degraded_message(optimizer: str, piece: str, reason: str, records: str) -> str:
    """The warning of degraded mode: what failed, what is not recorded, what still is."""
    import dspy

    lost = f"{records} are" if records else "its decisions are"
    return (
        f"{optimizer} recorded in degraded mode with DSPy {dspy.__version__}: {piece}: "
        f"{reason}. From then on {lost} not recorded; the compile trial with its LM and "
        "module calls, and its dspy.Evaluate runs, are. The compile ran as without dspex. "
        "Set capture.strict = true to make this an error."
    )


_told: set[str] = set()
_told_lock = threading.Lock()


def tell_stderr(message: str) -> None:
    """``message`` on stderr, once per process."""
    with _told_lock:
        if message in _told:
            return
        _told.add(message)
    print(f"dspex: warning: {message}", file=sys.stderr)


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
    """Base of every hook: opens a compile trial, makes it the active recorder, and
    receives the calls of the patches of its optimizer (:mod:`dspex.capture.instrument`).

    A subclass names the patches it relies on (:attr:`patches`), checks what else it
    reads in :meth:`install` (locals, attributes, signatures), handles the patched calls
    in methods named by the patches, and adds its last records in :meth:`conclude`.

    **Degraded mode.** When an assumption about DSPy fails (a patch could not be applied,
    a check fails, or the hook's own code raises while the compile runs) the hook stops
    recording what it adds (:attr:`adds`) from then on: every patch hands its calls to
    DSPy's original, so the compile returns exactly what it returns without dspex. The
    compile trial, its LM and module calls and its ``dspy.Evaluate`` runs are still
    recorded; the experiment gets a warning naming the piece and why (shown in every
    view, and once on stderr). With ``capture.strict = true`` the experiment also fails
    when its block ends (:class:`~dspex.errors.UnsupportedOptimizerVersion` or
    :class:`~dspex.errors.CaptureError`), for CI.
    """

    #: Names of the patches (``instrument.PATCHES``) this hook relies on.
    patches: ClassVar[tuple[str, ...]] = ()
    #: The optimizers whose patched calls come to this hook (by class name).
    receives: ClassVar[tuple[str, ...]] = ()
    #: What this hook records beyond the compile trial: what degraded mode loses.
    adds: ClassVar[str] = ""

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
        # Errors of recording the experiment fails with when its block ends (strict mode).
        self.capture_errors: list[BaseException] = []
        #: piece -> why it could not be recorded; non-empty: the hook records no more
        self.degraded: dict[str, str] = {}
        self._degrade_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.info.name

    # -- what the patches call --------------------------------------------------------

    def handles(self, instance: Any) -> bool:
        """Whether a patched method called on ``instance`` belongs to this compile."""
        return instance is self.optimizer

    def is_degraded(self, piece: str = "") -> bool:
        return bool(self.degraded)

    def degrade(self, piece: str, error: BaseException | str) -> None:
        """Record no more (see the class docs): warn on the experiment, once on stderr, and
        in strict mode keep an error that fails the experiment when its block ends."""
        if isinstance(error, str | Unrecognised):
            reason = str(error)
        else:
            reason = f"{type(error).__name__}: {error}"
        with self._degrade_lock:
            if piece in self.degraded:
                return
            first = not self.degraded
            self.degraded[piece] = reason
        message = degraded_message(self.name, piece, reason, self.adds)
        try:
            self.journal.warn(message)
            if self.recorder is not None:
                self.journal.update_trial(self.recorder, metadata={"degraded": dict(self.degraded)})
        except Exception:  # the warning below still says it
            logger.debug("dspex: could not note degraded mode on the experiment", exc_info=True)
        if first:
            tell_stderr(message)
        if strict():
            cls = UnsupportedOptimizerVersion if isinstance(error, Unrecognised) else CaptureError
            failure = cls(message)
            if isinstance(error, BaseException):
                failure.__cause__ = error
            self.capture_errors.append(failure)

    # -- the compile ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the compile trial, make it the active recorder (and this hook the one of
        its optimizer's patches), then :meth:`install`; a failed install degrades.

        A compile nested in another recorded compile (BootstrapFewShot inside MIPROv2)
        gets the outer compile's trial as its parent.
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
            EventKind.OPTIMIZER_START,
            {"optimizer": self.name, "settings": self.info.settings},
        )
        hooks = lookup(HOOKS_KEY)
        for optimizer in self.receives:
            hooks = with_hook(hooks, optimizer, self)
        self._token = push(**{RECORDER_KEY: self.recorder, HOOKS_KEY: hooks})
        missing = unavailable()
        for patch in self.patches:
            if patch in missing:
                self.degrade(patch, Unrecognised(missing[patch]))
                return
        try:
            self.install()
        except Exception as exc:  # noqa: BLE001 - degraded: the compile runs as without dspex
            self.degrade(_piece_of(exc, f"{self.name} hook install"), exc)
            self._safely(self.uninstall)

    def _reset_overrides(self) -> None:
        if self._token is not None:
            pop(self._token)
            self._token = None

    def _safely(self, step: Any, *args: Any) -> Any:
        try:
            return step(*args)
        except Exception as exc:  # noqa: BLE001 - degraded, never the user's error
            self.degrade(_piece_of(exc, f"{self.name} hook: {step.__name__}"), exc)
            return None

    def end_payload(self, outputs: Any, exception: BaseException | None) -> OptimizerOutcome:
        """Extra ``optimizer_end`` fields (``best_candidate``, ``best_score``) of a subclass."""
        return {}

    def conclude(self, outputs: Any, exception: BaseException | None) -> None:
        """A subclass's last records (the returned candidate...), before the compile trial
        is finished; not called once degraded."""

    def abandon(self, exception: BaseException | None) -> None:
        """Degraded: finish the trials still open (their records stop where recording did)."""

    def finish(self, outputs: Any, exception: BaseException | None) -> None:
        """End of the compile: restore DSPy, :meth:`conclude`, finish the compile trial."""
        self._safely(self.uninstall)
        self._reset_overrides()
        if not self.degraded:
            self._safely(self.conclude, outputs, exception)
        if self.degraded:  # also when conclude itself failed
            try:
                self.abandon(exception)
            except Exception:  # the journal closes what is left when it seals
                logger.debug("dspex: could not close %s's open trials", self.name, exc_info=True)
        outcome: OptimizerOutcome = {}
        if not self.degraded:
            outcome = self._safely(self.end_payload, outputs, exception) or outcome
        if self.degraded:
            self.result_trial_id = None
        assert self.recorder is not None
        payload: OptimizerEndPayload = {
            "optimizer": self.name,
            "ok": exception is None,
            "error": None if exception is None else f"{type(exception).__name__}: {exception}",
            **outcome,
        }
        self.recorder.emit(EventKind.OPTIMIZER_END, payload)
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
        changes: list[Change] = []
        if program is not None:
            name = self.journal.program_name
            before, after = variables_of(self.student, name), variables_of(program, name)
            changes = changes_between(before, after)
            self.journal.update_trial(self.recorder, program=program)
        self.recorder.emit(
            EventKind.CANDIDATE_CREATED,
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
        """Check what the hook reads and prepare its state (nothing for the generic hook);
        raise :class:`Unrecognised` naming what is missing or has changed."""

    def uninstall(self) -> None:
        """Undo what :meth:`install` set on the optimizer instance (SIMBA's strategies);
        must restore everything even after a failed compile."""


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
