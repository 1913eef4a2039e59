"""What dspex records while ``dspy.BootstrapFewShot.compile`` runs (DSPy 3.4.x).

One trial (the compile, ``role="compile"``) whose variables are the compiled
program's. Per bootstrap attempt (``BootstrapFewShot._bootstrap_one_example``, a patch
of :mod:`dspex.capture.instrument` that hands this compile's calls to the hook): a
``step`` event naming the example
and round, the teacher's run (execution events), and a ``decision`` saying whether
the trace became a demo and for which predictors. At the end, ``candidate_created``
with the demos each predictor received (bootstrapped and labeled).
"""

from __future__ import annotations

from typing import Any

from dspex.capture.callback import error_event
from dspex.capture.program import module_paths, predictor_path, program_name
from dspex.model import EventKind
from dspex.optimizers import register_hook
from dspex.optimizers.base import OptimizerHook, Unrecognised
from dspex.optimizers.patching import require_attribute

__all__ = ["BootstrapFewShotHook"]

NAME = "BootstrapFewShot"


class BootstrapFewShotHook(OptimizerHook):
    """Records each bootstrap attempt and whether it became a demo."""

    patches = (f"{NAME}: dspy.teleprompt.bootstrap.BootstrapFewShot._bootstrap_one_example",)
    receives = (NAME,)
    adds = "BootstrapFewShot's attempts and which became demos"

    @classmethod
    def check(cls, optimizer: Any) -> None:
        require_attribute(NAME, optimizer, "_train", f"{NAME}._train")

    def install(self) -> None:
        self.check(self.optimizer)
        self.attempts = 0

    def bootstrap_one_example(self, original: Any, example: Any, round_idx: int = 0) -> Any:
        return self._attempt(original, example, round_idx)

    def _index(self, example: Any) -> int:
        for i, candidate in enumerate(getattr(self.optimizer, "trainset", None) or []):
            if candidate is example:
                return i
        return -1

    def _trace_counts(self) -> dict[str, int]:
        """Traces kept so far per predictor, named as its variables are (``qa.predict``;
        DSPy's ``name2traces`` says ``predict``, and ``self`` for a bare Predict)."""
        traces = getattr(self.optimizer, "name2traces", None) or {}
        root = self.journal.program_name or program_name(self.student)
        return {predictor_path(root, name): len(demos) for name, demos in traces.items()}

    def _attempt(self, original: Any, example: Any, round_idx: int) -> Any:
        assert self.recorder is not None
        teacher = getattr(self.optimizer, "teacher", None)
        if teacher is not None and self.attempts == 0:  # a copy: name its modules by path
            self.recorder.module_paths.update(module_paths(teacher, self.journal.program_name))
        index = self._index(example)
        if not isinstance(round_idx, int) or index < 0:
            raise Unrecognised(
                f"its example is not in the trainset, or round {round_idx!r} is not a number",
                piece=f"{NAME}._bootstrap_one_example(example, round_idx)",
            )
        self.attempts += 1
        step_id = self.recorder.emit(
            EventKind.STEP,
            {
                "optimizer": NAME,
                "step": self.attempts,
                "batch": [index],
                "details": {"round": round_idx},
            },
        )
        before = self._trace_counts()
        try:
            success = original(example, round_idx)
        except Exception as exc:
            self.recorder.emit(EventKind.ERROR, error_event(exc), parent_id=step_id)
            raise
        after = self._trace_counts()
        gained = {
            name: after[name] - before.get(name, 0)
            for name in after
            if after[name] > before.get(name, 0)
        }
        accepted = bool(success)
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": self.attempts,
                "decision": f"Bootstrap example {index} (round {round_idx}): "
                + ("accepted" if accepted else "rejected"),
                "strategy": None,
                "rationale": "The teacher's prediction passed the metric"
                if accepted
                else "The teacher's prediction failed the metric (or raised)",
                "action": ("Keep its trace as demo(s) for " + ", ".join(sorted(gained)))
                if accepted
                else "Discard the trace",
                "details": {
                    "example": index,
                    "round": round_idx,
                    "accepted": accepted,
                    "demos_added": gained,
                },
            },
            parent_id=step_id,
        )
        return success

    def conclude(self, outputs: Any, exception: BaseException | None) -> None:
        if exception is None and outputs is not None and self.recorder is not None:
            self.record_result(outputs, "bootstrap")


register_hook(NAME, BootstrapFewShotHook)
