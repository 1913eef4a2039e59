"""The base of hooks for optimizers that score candidates with their module's own
``dspy.Evaluate`` (COPRO, BootstrapFewShotWithRandomSearch).

Such a hook checks what it relies on (the ``Evaluate`` name in the optimizer's module,
the locals of ``compile`` it reads, the optimizer's attributes), patches that
``Evaluate`` while the compile runs, and receives every call of it in ``evaluate``:

    class CoproHook(EvaluatingHook):
        optimizer_name = "COPRO"
        evaluate_patch = ModulePatch(MODULE, "Evaluate", hook_key=HOOK_KEY, method="evaluator")
        required_locals = ("d", "p_i", "c_i")

        def evaluate(self, evaluate, program, *args, **kwargs): ...
"""

from __future__ import annotations

from typing import Any, ClassVar

from dspex.optimizers.base import OptimizerHook
from dspex.optimizers.patching import ModulePatch, require_attribute, require_locals
from dspex.optimizers.units import RecordedEvaluate

__all__ = ["EvaluatingHook"]


class EvaluatingHook(OptimizerHook):
    """See the module docs. Subclasses call :meth:`patch_evaluate` at the end of
    ``install`` and define ``evaluate(evaluate, program, *args, **kwargs)``."""

    #: The optimizer's class name, as DSPy spells it (also the name errors give).
    optimizer_name: ClassVar[str]
    #: The patch of ``Evaluate`` in the optimizer's module.
    evaluate_patch: ClassVar[ModulePatch]
    #: Local variables of the optimizer's ``compile`` that ``evaluate`` reads.
    required_locals: ClassVar[tuple[str, ...]]
    #: Attributes of the optimizer the hook reads.
    required_attributes: ClassVar[tuple[str, ...]] = ("metric",)

    @classmethod
    def check(cls, optimizer: Any) -> None:
        name = cls.optimizer_name
        cls.evaluate_patch.check(name)
        base = next((c for c in type(optimizer).__mro__ if c.__name__ == name), None)
        compile_fn = require_attribute(name, base, "compile", f"{name}.compile")
        require_locals(name, compile_fn, cls.required_locals)
        for attribute in cls.required_attributes:
            require_attribute(name, optimizer, attribute, f"{name}.{attribute}")

    def patch_evaluate(self) -> None:
        self.evaluate_patch.acquire(self.optimizer_name)
        self._patched = True

    def uninstall(self) -> None:
        if getattr(self, "_patched", False):
            self._patched = False
            self.evaluate_patch.release()

    def evaluator(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        """What the patched ``Evaluate(...)`` returns: the optimizer's own instance, whose
        calls go to ``self.evaluate``."""
        return RecordedEvaluate(self, original(*args, **kwargs))

    def evaluate(self, evaluate: Any, program: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define evaluate()")
