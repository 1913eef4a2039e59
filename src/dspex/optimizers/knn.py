"""What dspex records for ``dspy.KNNFewShot`` (DSPy 3.4.x): one compile, and one retrieval
per example the compiled program answers.

``KNNFewShot.compile`` only replaces the program's ``forward``: each later call retrieves
the ``k`` training examples nearest to its inputs and runs a fresh ``BootstrapFewShot``
compile on them to choose demos. So:

* the compile is one trial (``role="compile"``): a ``decision`` saying how demos will be
  chosen (``k``, the training set, the bootstrap settings) and ``candidate_created``
  (no demos yet: they are chosen per example); the program carries that trial's id;
* each example's retrieval is a ``decision`` on that example's execution, in the trial
  running the program (an evaluation, say): which training examples were nearest, and
  which of them became demos. The BootstrapFewShot compile (and its LabeledFewShot
  teacher compile) inside ``forward`` is *not* a compile trial of its own; its LM calls
  stay in the example's execution, named by module path.

Nothing of DSPy is wrapped for the compile. A compile running inside the program's
``forward`` (found by the code object of ``KNNFewShot.compile``'s inner ``forward_pass``
on the call stack, checked at compile time) gets :class:`KnnRetrievalHook`, which
receives the calls of that BootstrapFewShot's ``_bootstrap_one_example`` (a patch of
:mod:`dspex.capture.instrument`) to name the teacher's modules.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from dspex.capture.context import active_recorder, lookup, pop, push
from dspex.capture.instrument import HOOKS_KEY, with_hook
from dspex.capture.jsonable import jsonable
from dspex.capture.program import module_paths, program_name, variables_of
from dspex.model import EventKind
from dspex.optimizers import register_context_hook, register_hook
from dspex.optimizers.base import OptimizerHook
from dspex.optimizers.patching import require_attribute, unsupported

__all__ = ["KnnFewShotHook", "KnnRetrievalHook", "inside_knn_forward"]

NAME = "KNNFewShot"
FORWARD = "forward_pass"  # the function KNNFewShot.compile puts in place of forward


def _forward_code() -> types.CodeType | None:
    """The code object of the ``forward`` KNNFewShot's compiled programs run."""
    try:
        from dspy.teleprompt.knn_fewshot import KNNFewShot
    except ImportError:
        return None
    code = getattr(inspect.unwrap(KNNFewShot.compile), "__code__", None)
    consts = getattr(code, "co_consts", ())
    return next((c for c in consts if isinstance(c, types.CodeType) and c.co_name == FORWARD), None)


def _forward_frame() -> types.FrameType | None:
    code = _forward_code()
    frame = sys._getframe(1)
    while frame is not None and code is not None:
        if frame.f_code is code:
            return frame
        frame = frame.f_back  # type: ignore[assignment]
    return None


def inside_knn_forward(optimizer: Any) -> bool:
    """Whether a compile of ``optimizer`` runs inside a KNNFewShot program's ``forward``."""
    return _forward_frame() is not None


class KnnFewShotHook(OptimizerHook):
    """The KNNFewShot compile: how demos will be chosen, one trial."""

    @classmethod
    def check(cls, optimizer: Any) -> None:
        if _forward_code() is None:
            raise unsupported(NAME, f"KNNFewShot.compile's inner {FORWARD}")
        knn = require_attribute(NAME, optimizer, "KNN", "KNNFewShot.KNN")
        for attribute in ("k", "trainset"):
            require_attribute(NAME, knn, attribute, f"KNNFewShot.KNN.{attribute}")
        require_attribute(
            NAME, optimizer, "few_shot_bootstrap_args", "KNNFewShot.few_shot_bootstrap_args"
        )

    adds = "how KNNFewShot will choose demos"

    def install(self) -> None:
        self.check(self.optimizer)

    def conclude(self, outputs: Any, exception: BaseException | None) -> None:
        if exception is None and self.recorder is not None:
            knn = self.optimizer.KNN
            settings = jsonable(dict(self.optimizer.few_shot_bootstrap_args))
            self.recorder.emit(
                EventKind.DECISION,
                {
                    "optimizer": NAME,
                    "step": None,
                    "decision": f"Choose demos per example: the {knn.k} nearest training examples",
                    "strategy": "knn",
                    "rationale": f"KNNFewShot retrieves, for each input, the {knn.k} nearest of "
                    f"{len(knn.trainset)} training examples and bootstraps demos from them",
                    "action": "Replace the program's forward; each call records its retrieval "
                    "as a decision",
                    "details": {"k": knn.k, "trainset": len(knn.trainset), "bootstrap": settings},
                },
            )
            self.record_result(None, "knn")


class KnnRetrievalHook(OptimizerHook):
    """A compile inside a KNNFewShot program's ``forward``: part of the example's execution.

    It opens no trial. The compile KNNFewShot runs itself (its ``BootstrapFewShot``) records
    one ``decision`` into the recorder of whatever runs the program: the nearest training
    examples and the demos chosen from them. Compiles nested deeper (the teacher's
    LabeledFewShot) record nothing of their own.
    """

    receives = ("BootstrapFewShot",)
    adds = "KNNFewShot's retrievals"

    def start(self) -> None:
        self.recorder = active_recorder()
        frame = _forward_frame()
        local = frame.f_locals if frame is not None else {}
        knn = getattr(local.get("self"), "KNN", None)
        self.primary = local.get("few_shot_bootstrap") is self.optimizer
        self.trainset = list(getattr(knn, "trainset", None) or [])
        self.neighbours = list(local.get("knn_trainset") or [])
        self.root = self.journal.program_name or program_name(self.student)
        self._context = push(**{HOOKS_KEY: with_hook(lookup(HOOKS_KEY), "BootstrapFewShot", self)})

    def handles(self, instance: Any) -> bool:
        return self.primary and self.recorder is not None and instance is self.optimizer

    def bootstrap_one_example(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        teacher = getattr(self.optimizer, "teacher", None)
        if teacher is not None and self.recorder is not None:  # a copy: name its modules
            self.recorder.module_paths.update(module_paths(teacher, self.root))
        return original(*args, **kwargs)

    def finish(self, outputs: Any, exception: BaseException | None) -> None:
        pop(self._context)
        if self.degraded:
            return
        try:
            self._record_retrieval(outputs, exception)
        except Exception as exc:  # noqa: BLE001 - degraded, never the user's error
            self.degrade("KNNFewShot's retrieval decision", exc)

    def _record_retrieval(self, outputs: Any, exception: BaseException | None) -> None:
        if not self.primary or self.recorder is None or exception is not None or outputs is None:
            return
        # the program about to answer is this compile's result: name its modules too
        self.recorder.module_paths.update(module_paths(outputs, self.root))
        index = {id(example): i for i, example in enumerate(self.trainset)}
        neighbours = [index.get(id(example), -1) for example in self.neighbours]
        demos = {
            name: list(p.demos) for name, p in variables_of(outputs, self.root).predictors.items()
        }
        bootstrapped = sum(1 for ds in demos.values() for d in ds if d.get("augmented"))
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": None,
                "decision": f"KNN retrieval: training examples {neighbours}",
                "strategy": "knn",
                "rationale": f"The {len(neighbours)} training examples nearest to this input; "
                f"BootstrapFewShot kept {bootstrapped} bootstrapped demo(s) whose traces passed "
                "the metric, the rest are labeled",
                "action": "Answer with "
                + ", ".join(f"{len(ds)} demo(s) for {name}" for name, ds in demos.items()),
                "details": {"neighbours": neighbours, "demos": demos},
            },
        )


register_hook(NAME, KnnFewShotHook)
register_context_hook(inside_knn_forward, KnnRetrievalHook)
