"""What dspex records while ``dspy.LabeledFewShot.compile`` runs (DSPy 3.4.x).

LabeledFewShot makes no LM call: it gives each predictor of a fresh copy of the
student up to ``k`` training examples as demos (a seeded sample, or the first ``k``).
The compile trial (``role="compile"``) holds a ``decision`` naming the training
examples chosen per predictor and ``candidate_created`` with the demos each predictor
received; its variables are the returned program's, and that program carries its id.
Nothing is wrapped: the choice is read from the program ``compile`` returns.
"""

from __future__ import annotations

from typing import Any

from dspex.capture.program import predictor_paths, program_name
from dspex.model import EventKind
from dspex.optimizers import register_hook
from dspex.optimizers.base import OptimizerHook

__all__ = ["LabeledFewShotHook"]

NAME = "LabeledFewShot"


class LabeledFewShotHook(OptimizerHook):
    """Records the labeled demos LabeledFewShot chose for each predictor."""

    adds = "LabeledFewShot's choice of demos"

    def conclude(self, outputs: Any, exception: BaseException | None) -> None:
        if exception is None and outputs is not None and self.recorder is not None:
            self._record_choice(outputs)

    def _record_choice(self, outputs: Any) -> None:
        assert self.recorder is not None
        root = self.journal.program_name or program_name(self.student)
        trainset = list(self.inputs.get("trainset") or [])
        index = {id(example): i for i, example in enumerate(trainset)}
        chosen = {
            name: [index.get(id(demo), -1) for demo in predictor.demos]
            for name, predictor in predictor_paths(outputs, root)
        }
        sample = self.inputs.get("sample", True)
        k = getattr(self.optimizer, "k", None)
        self.recorder.emit(
            EventKind.DECISION,
            {
                "optimizer": NAME,
                "step": None,
                "decision": "Labeled demos: "
                + ", ".join(f"{name} gets {len(ids)}" for name, ids in chosen.items()),
                "strategy": "labeled",
                "rationale": f"Up to k={k} training examples per predictor, "
                + ("sampled with a fixed seed" if sample else "the first ones in order")
                + f", from {len(trainset)}",
                "action": "; ".join(
                    f"{name}: training examples {ids}" for name, ids in chosen.items()
                ),
                "details": {"k": k, "sample": sample, "trainset_indices": chosen},
            },
        )
        self.record_result(outputs, "labeled")


register_hook(NAME, LabeledFewShotHook)
