"""What dspex records while ``dspy.GEPA.compile`` runs (DSPy 3.4.x, gepa 0.1.x).

GEPA reports its loop through its own public callback protocol
(``gepa.core.callbacks.GEPACallback``): dspex adds a :class:`GepaListener` to the
callbacks ``gepa.optimize`` receives, after the user's own (``gepa_kwargs["callbacks"]``),
which keep running unchanged. The callbacks say *what* happened; to know which trial
each program run belongs to, the hook also receives the calls of four methods of the
one ``DspyAdapter`` the compile builds (``evaluate``, ``build_program``,
``make_reflective_dataset``, ``propose_new_texts``), known from ``gepa.optimize``'s
``adapter`` argument (``gepa.optimize`` and the four methods are patches of
:mod:`dspex.capture.instrument`, handing this compile's calls to the hook). A compile
whose ``gepa.optimize`` never came through dspex's patch (a stand-in put in its place)
is recorded in degraded mode.

Trials (``metadata["role"]``), numbered as GEPA numbers its candidates:

* ``compile``: ``optimizer_start``; one ``step`` per iteration (parent, minibatch,
  budget); a ``decision`` each time the Pareto front changes (``details.pareto_front``); the
  returned candidate; ``optimizer_end`` (best candidate, valset score, budget, front);
* ``candidate`` "candidate 0 (seed)": the student;
* ``candidate`` "iteration i proposal", renamed "candidate k" when GEPA accepts it:
  ``step``; the parent chosen and why; the parent's runs on the minibatch (the
  *before* runs, ``example_result`` with ``phase = "before"``); the reflection: the
  feedback given to the reflection LM, the reflection LM call, and per component a
  ``decision`` whose action is the new instruction; ``candidate_created`` with the
  instruction diff; the proposal's own minibatch runs (``phase = "after"``),
  ``trial_score`` and ``candidate_scored`` (scope ``minibatch``); the verdict (a
  ``decision``: accepted or rejected, with GEPA's rule and both scores);
* ``candidate`` "iteration i merge": a merge of two Pareto candidates (two parents),
  its runs on the valset examples GEPA picked, and the verdict;
* ``validation`` "valset evaluation of candidate k": an accepted candidate on the
  valset (scope ``full``), parent = its candidate trial;
* ``iteration`` "iteration i (skipped)": an iteration GEPA ended before proposing (all
  minibatch scores perfect, or no trajectories), with the parent's runs.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from dspex.capture.context import active_recorder, recording
from dspex.capture.program import module_paths, program_name
from dspex.capture.scoring import metric_name
from dspex.errors import CaptureError
from dspex.model.payloads import OptimizerOutcome
from dspex.optimizers import register_hook
from dspex.optimizers.base import OptimizerHook, Unrecognised
from dspex.optimizers.gepa_records import GepaRecords
from dspex.optimizers.patching import require_attribute, unsupported

__all__ = ["EVENTS", "GepaHook", "GepaListener"]

logger = logging.getLogger(__name__)

NAME = "GEPA"
ADAPTER = "dspy.teleprompt.gepa.gepa_utils.DspyAdapter"
ADAPTER_METHODS = ("evaluate", "build_program", "make_reflective_dataset", "propose_new_texts")
#: The GEPACallback methods dspex listens to.
EVENTS = (
    "on_optimization_start",
    "on_optimization_end",
    "on_iteration_start",
    "on_iteration_end",
    "on_candidate_selected",
    "on_minibatch_sampled",
    "on_evaluation_start",
    "on_evaluation_end",
    "on_evaluation_skipped",
    "on_valset_evaluated",
    "on_reflective_dataset_built",
    "on_proposal_start",
    "on_proposal_end",
    "on_candidate_accepted",
    "on_candidate_rejected",
    "on_merge_attempted",
    "on_merge_accepted",
    "on_merge_rejected",
    "on_pareto_front_updated",
    "on_budget_updated",
    "on_error",
)


class GepaListener:
    """A GEPA callback that hands every event to the hook of its compile.

    GEPA logs and swallows exceptions raised in callbacks; a failure to record an event
    puts the hook in degraded mode instead (a warning on the experiment), so that a
    record is never silently incomplete, and the listener ignores the events after it.
    """

    def __init__(self, hook: GepaHook) -> None:
        self._hook = hook

    def _dispatch(self, name: str, event: dict[str, Any]) -> None:
        if self._hook.is_degraded():
            return
        try:
            getattr(self._hook.records, name)(event)
        except Exception as exc:  # noqa: BLE001 - degraded: a warning on the experiment
            logger.error("dspex: could not record GEPA's %s event: %s", name, exc)
            self._hook.degrade(f"GEPA's {name} event", exc)


def _forward(name: str) -> Callable[[GepaListener, dict[str, Any]], None]:
    def method(self: GepaListener, event: dict[str, Any]) -> None:
        self._dispatch(name, event)

    method.__name__ = name
    return method


for _event in EVENTS:
    setattr(GepaListener, _event, _forward(_event))


MIN_GEPA = (0, 1)
"""The oldest gepa whose callbacks the hook reads (DSPy 3.3 and 3.4 install gepa 0.1.x)."""


def gepa_version() -> tuple[int, ...] | None:
    """The installed gepa's (major, minor), None when it does not say."""
    from importlib import metadata

    try:
        text = metadata.version("gepa")
    except metadata.PackageNotFoundError:
        return None
    parts = []
    for part in text.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            return None
        parts.append(int(digits))
    return tuple(parts)


def _adapter_class() -> Any:
    from dspy.teleprompt.gepa import gepa_utils

    return getattr(gepa_utils, "DspyAdapter", None)


class GepaHook(OptimizerHook):
    """Records GEPA's iterations, reflections, verdicts, merges and Pareto front."""

    patches = (
        f"{NAME}: gepa.optimize",
        *(f"{NAME}: dspy.teleprompt.gepa.gepa_utils.DspyAdapter.{m}" for m in ADAPTER_METHODS),
    )
    receives = (NAME,)
    adds = "GEPA's iterations, reflections, candidates, verdicts and Pareto front"

    # -- install ----------------------------------------------------------------------

    @classmethod
    def check(cls, optimizer: Any) -> None:
        """Raise Unrecognised if anything this hook relies on has moved."""
        import gepa

        try:
            # gepa re-exports optimize from gepa.api without an __all__
            optimize = gepa.optimize  # type: ignore[attr-defined]
            parameters = inspect.signature(inspect.unwrap(optimize)).parameters
        except (TypeError, ValueError) as exc:
            raise unsupported(NAME, "gepa.optimize(adapter=..., callbacks=...)", exc) from exc
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        if not takes_any and not {"adapter", "callbacks"} <= set(parameters):
            raise unsupported(NAME, "gepa.optimize(adapter=..., callbacks=...)")
        try:
            from gepa.core import callbacks
        except ImportError as exc:
            raise unsupported(NAME, "gepa.core.callbacks", exc) from exc
        protocol = require_attribute(NAME, callbacks, "GEPACallback", "gepa.core.callbacks")
        missing = [e for e in EVENTS if not callable(getattr(protocol, e, None))]
        if missing:
            raise unsupported(NAME, f"GEPACallback.{', '.join(missing)}")
        adapter = _adapter_class()
        if adapter is None:
            raise unsupported(NAME, ADAPTER)
        for method in ADAPTER_METHODS:
            require_attribute(NAME, adapter, method, f"{ADAPTER}.{method}")
        for attribute in ("gepa_kwargs", "metric_fn"):
            require_attribute(NAME, optimizer, attribute, f"{NAME}.{attribute}")
        version = gepa_version()
        if version is not None and version < MIN_GEPA:
            # gepa 0.0.x (the one DSPy 3.2 pins) has the same callback names, but evaluates
            # the seed's valset before any callback and DSPy's adapter evaluates through
            # dspy.Evaluate: the records would put runs in the wrong trials
            from importlib import metadata

            installed = f"gepa {metadata.version('gepa')}"
            raise Unrecognised(
                f"{installed} is older than the gepa {'.'.join(map(str, MIN_GEPA))} whose "
                "callbacks this hook reads",
                piece=installed,
            )

    def install(self) -> None:
        self.check(self.optimizer)
        sampling = (self.optimizer.gepa_kwargs or {}).get("sampling_strategy")
        if sampling is not None and type(sampling).__name__ != "SingleMutationSampling":
            raise Unrecognised(
                f"dspex records GEPA iterations that propose one candidate each, but "
                f"gepa_kwargs['sampling_strategy'] is {type(sampling).__name__}; remove it "
                "(GEPA's default is SingleMutationSampling) to record this run",
                piece="gepa_kwargs['sampling_strategy']",
            )
        assert self.recorder is not None
        trainset = list(self.inputs.get("trainset") or [])
        self.root = self.journal.program_name or program_name(self.student)
        self.records = GepaRecords(
            self.journal,
            self.recorder,
            student=self.student,
            trainset=trainset,
            valset=list(self.inputs.get("valset") or trainset),
            root=self.root,
            metric=metric_name(self.optimizer.metric_fn),
            selection=str(getattr(self.optimizer, "candidate_selection_strategy", "?")),
        )
        self.listener = GepaListener(self)
        self.user_callbacks: list[Any] = []
        self.adapters: list[Any] = []
        self.optimized = False

    def handles(self, instance: Any) -> bool:
        adapters = getattr(self, "adapters", ())  # none before (or without) install
        return instance is self.optimizer or any(a is instance for a in adapters)

    # -- gepa.optimize: add our callback, wrap the adapter ---------------------------------

    def optimize(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        """``gepa.optimize`` with the listener after the user's callbacks, adapter wrapped."""
        self.user_callbacks = list(kwargs.get("callbacks") or [])
        kwargs["callbacks"] = [*self.user_callbacks, self.listener]
        rule = kwargs.get("acceptance_criterion", "strict_improvement")
        self.records.rule = rule if isinstance(rule, str) else type(rule).__name__
        budget = kwargs.get("max_metric_calls")
        self.records.max_calls = budget if isinstance(budget, int) else None
        adapter = kwargs.get("adapter")
        if adapter is None:
            raise Unrecognised(
                "was called without the adapter= argument", piece="gepa.optimize(adapter=...)"
            )
        self.adapters.append(adapter)
        self.optimized = True
        return original(*args, **kwargs)

    def adapter_build_program(self, original: Any, candidate: Any, *a: Any, **kw: Any) -> Any:
        program = original(candidate, *a, **kw)
        # GEPA's programs are copies of the student: name their modules by path
        recorder = active_recorder()
        if recorder is not None:
            recorder.module_paths.update(module_paths(program, self.root))
        return program

    def adapter_evaluate(
        self, original: Any, batch: Any, candidate: Any, *a: Any, **kw: Any
    ) -> Any:
        target = self.records.evaluation_target(candidate)
        if target is None:
            return original(batch, candidate, *a, **kw)
        with recording(target.recorder):
            result = original(batch, candidate, *a, **kw)
        target.add(list(batch), result)
        return result

    def adapter_make_reflective_dataset(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        return self._in_iteration(original, *args, **kwargs)

    def adapter_propose_new_texts(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        return self._in_iteration(original, *args, **kwargs)

    def _in_iteration(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``original`` (the metric's feedback, the reflection LM) in the proposal's trial."""
        recorder = self.records.iteration_recorder()
        if recorder is None:
            return original(*args, **kwargs)
        with recording(recorder):
            return original(*args, **kwargs)

    # -- the end ------------------------------------------------------------------------

    def end_payload(self, outputs: Any, exception: BaseException | None) -> OptimizerOutcome:
        return self.records.end_payload()

    def conclude(self, outputs: Any, exception: BaseException | None) -> None:
        if not self.optimized and exception is None:
            raise Unrecognised(
                "the compile returned without calling it through dspex's patch (a stand-in "
                "put in its place?)",
                piece="gepa.optimize",
            )
        self.records.close(exception)
        self.result_trial_id = self.records.result_trial_id

    def abandon(self, exception: BaseException | None) -> None:
        records = getattr(self, "records", None)
        if records is not None:
            records.close(exception or CaptureError("dspex stopped recording (degraded mode)"))


register_hook(NAME, GepaHook)
