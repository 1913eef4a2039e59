"""How a study seed reaches each optimizer, and the arguments an arm's cell is built with.

DSPy's optimizers take their seed in different places, or not at all:

- ``dspy.SIMBA``: ``compile(student, trainset=..., seed=s)``.
- ``dspy.MIPROv2``, ``dspy.GEPA``: the constructor, ``MIPROv2(..., seed=s)``
  (MIPROv2's ``compile(seed=0)`` would fall back to the constructor's: ``seed or self.seed``).
- ``dspy.BootstrapFewShotWithRandomSearch``: a range. It seeds its k candidates -3..k-1
  on every run; study seed s evaluates candidates ``s*k .. s*k+k-1`` instead
  (``num_candidate_programs=(s+1)*k``, ``compile(restrict=[-3, -2, -1, s*k, ...])``).
- ``dspy.COPRO``, ``LabeledFewShot``, ``BootstrapFewShot``, ``KNNFewShot``: no seed. The
  arm runs one cell, or one per seed with ``replicates = true``.
- any other: a ``seed`` parameter of ``compile``, else of the constructor, else none.

Every cell also seeds Python's ``random`` and numpy's global generator with its seed
before the optimizer runs.

    >>> import dspy
    >>> seeding_of(dspy.MIPROv2).value, seeding_of(dspy.COPRO).value
    ('constructor', 'none')
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from dspex.model.study import Seeding

__all__ = [
    "RANGE_OPTION",
    "compile_parameters",
    "constructor_parameters",
    "seed_arguments",
    "seeding_of",
]

_KNOWN: dict[str, Seeding] = {
    "SIMBA": Seeding.COMPILE,
    "MIPROv2": Seeding.CONSTRUCTOR,
    "GEPA": Seeding.CONSTRUCTOR,
    "BootstrapFewShotWithRandomSearch": Seeding.RANGE,
    "COPRO": Seeding.NONE,
    "LabeledFewShot": Seeding.NONE,
    "BootstrapFewShot": Seeding.NONE,
    "KNNFewShot": Seeding.NONE,
}
_DSPY_MODULE = "dspy."

RANGE_OPTION = "num_candidate_programs"
RANGE_DEFAULT = 16  # BootstrapFewShotWithRandomSearch's own default


def seeding_of(optimizer: type) -> Seeding:
    """How ``optimizer`` takes a seed (see the module's table)."""
    for cls in optimizer.__mro__:
        if cls.__module__.startswith(_DSPY_MODULE) and cls.__name__ in _KNOWN:
            return _KNOWN[cls.__name__]
    if "seed" in compile_parameters(optimizer):
        return Seeding.COMPILE
    if "seed" in constructor_parameters(optimizer):
        return Seeding.CONSTRUCTOR
    return Seeding.NONE


def _parameters(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    try:
        parameters = dict(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return {}
    parameters.pop("self", None)
    return parameters


def constructor_parameters(optimizer: type) -> dict[str, inspect.Parameter]:
    return _parameters(optimizer.__init__)  # type: ignore[misc]


def compile_parameters(optimizer: type) -> dict[str, inspect.Parameter]:
    return _parameters(getattr(optimizer, "compile", lambda: None))


def seed_arguments(
    seeding: Seeding, seed: int, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The constructor and compile arguments that carry ``seed``.

    >>> seed_arguments(Seeding.RANGE, 2, {"num_candidate_programs": 3})
    ({'num_candidate_programs': 9}, {'restrict': [-3, -2, -1, 6, 7, 8]})
    """
    if seeding is Seeding.COMPILE:
        return {}, {"seed": seed}
    if seeding is Seeding.CONSTRUCTOR:
        return {"seed": seed}, {}
    if seeding is Seeding.RANGE:
        per_seed = int(options.get(RANGE_OPTION, RANGE_DEFAULT))
        first = seed * per_seed
        restrict = [-3, -2, -1, *range(first, first + per_seed)]
        return {RANGE_OPTION: first + per_seed}, {"restrict": restrict}
    return {}, {}
