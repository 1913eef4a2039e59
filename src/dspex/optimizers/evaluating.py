"""The base of hooks for optimizers that score candidates with their module's own
``dspy.Evaluate`` (COPRO, BootstrapFewShotWithRandomSearch).

Such a hook checks what it relies on (the locals of ``compile`` it reads, the
optimizer's attributes); the patch of ``Evaluate`` in the optimizer's module (listed in
:mod:`dspex.capture.instrument`) hands it each ``Evaluate(...)`` the compile builds,
whose calls come to ``evaluate``:

    class CoproHook(EvaluatingHook):
        optimizer_name = "COPRO"
        required_locals = ("d", "p_i", "c_i")

        def evaluate(self, evaluate, program, *args, **kwargs): ...
"""

from __future__ import annotations

from typing import Any, ClassVar

from dspex.optimizers.base import OptimizerHook
from dspex.optimizers.patching import base_compile, require_attribute, require_locals
from dspex.optimizers.units import RecordedEvaluate

__all__ = ["EvaluatingHook"]


class EvaluatingHook(OptimizerHook):
    """See the module docs. Subclasses define ``evaluate(evaluate, program, *args, **kwargs)``."""

    #: The optimizer's class name, as DSPy spells it (also the name warnings give).
    optimizer_name: ClassVar[str]
    #: Local variables of the optimizer's ``compile`` that ``evaluate`` reads.
    required_locals: ClassVar[tuple[str, ...]]
    #: Attributes of the optimizer the hook reads.
    required_attributes: ClassVar[tuple[str, ...]] = ("metric",)

    @classmethod
    def check(cls, optimizer: Any) -> None:
        name = cls.optimizer_name
        require_locals(name, base_compile(name, optimizer), cls.required_locals)
        for attribute in cls.required_attributes:
            require_attribute(name, optimizer, attribute, f"{name}.{attribute}")

    def evaluator(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        """What the patched ``Evaluate(...)`` returns: the optimizer's own instance, whose
        calls go to ``self.evaluate``."""
        return RecordedEvaluate(self, original(*args, **kwargs))

    def evaluate(self, evaluate: Any, program: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define evaluate()")
