"""Import paths of callables: ``"package.module:function"`` (or ``"dspy.SIMBA"``).

A study names its program, data, metric and LM by import path, so that each worker
imports them itself (the LM is built there, with that machine's API keys). A callable
given directly (in a notebook) is kept as it is and travels to workers by value; its
:func:`describe` text stands for it in the study's record.

    >>> resolve("dspex.offline:exact_match").__name__
    'exact_match'
    >>> resolve("dspy.SIMBA").__name__
    'SIMBA'
    >>> resolve("dspex.offline:nope")
    Traceback (most recent call last):
    ...
    dspex.errors.ValidationError: 'dspex.offline:nope' does not import: module ...
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import Any

from dspex.errors import ValidationError

__all__ = ["Ref", "describe", "extend_path", "resolve"]

Ref = str | Any
"""An import path, or the callable itself."""


def resolve(ref: Ref) -> Any:
    """The object an import path names (or ``ref`` itself when it is not a string)."""
    if not isinstance(ref, str):
        return ref
    module_name, attributes = _split(ref)
    try:
        target: Any = importlib.import_module(module_name)
        for attribute in attributes:
            target = getattr(target, attribute)
    except ValidationError:
        raise
    except Exception as exc:  # ImportError, AttributeError, or the module's own error
        raise ValidationError(f"{ref!r} does not import: {exc}") from exc
    return target


def _split(ref: str) -> tuple[str, list[str]]:
    if ":" in ref:
        module_name, _, rest = ref.partition(":")
        attributes = rest.split(".") if rest else []
    else:
        module_name, _, last = ref.rpartition(".")
        attributes = [last]
    if not module_name or not attributes or not all(attributes):
        raise ValidationError(
            f"{ref!r} is not an import path: write 'package.module:function' "
            "(or 'package.Class', like 'dspy.SIMBA')"
        )
    return module_name, attributes


def describe(ref: Ref) -> str:
    """The import path, or ``module:qualname`` of a callable given directly."""
    if isinstance(ref, str):
        return ref
    module = getattr(ref, "__module__", None) or type(ref).__module__
    name = getattr(ref, "__qualname__", None) or type(ref).__qualname__
    return f"{module}:{name}"


def extend_path(paths: Iterable[str]) -> None:
    """Put ``paths`` on ``sys.path`` (after what is there), so that modules next to the
    study's spec import in this process and in the workers it starts."""
    for path in paths:
        if path and path not in sys.path:
            sys.path.append(path)
