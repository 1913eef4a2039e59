"""Optimizer hooks: what dspex records while a DSPy optimizer's ``compile`` runs.

A front end: hooks open trials through the :class:`~dspex.journal.ExperimentJournal`
and score through :mod:`dspex.capture.scoring`.

DSPy has no public hooks for optimizer decisions, so each supported optimizer has
one module here whose hook receives the calls of DSPy internals that the patches of
:mod:`dspex.capture.instrument` (the one list of every patch) hand to the compile
running in the caller's context. :func:`hook_for` picks the hook by optimizer class;
unknown optimizers get the :class:`GenericHook`, which records the compile as one trial.
When an assumption about DSPy fails, a hook records less and says so (degraded mode,
see :class:`~dspex.optimizers.base.OptimizerHook`); the compile is never changed.

A hook is started by ``DspexCallback.on_compile_start`` and finished by
``on_compile_end`` (always called, also when compile raises).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dspex.journal import ExperimentJournal
from dspex.optimizers.base import GenericHook, OptimizerHook, optimizer_info

__all__ = [
    "HOOKS",
    "GenericHook",
    "OptimizerHook",
    "hook_for",
    "optimizer_info",
    "register_context_hook",
    "register_hook",
]

HOOKS: dict[str, type[OptimizerHook]] = {}
#: Hooks chosen by where a compile runs rather than by its class (checked first).
CONTEXT_HOOKS: list[tuple[Callable[[Any], bool], type[OptimizerHook]]] = []


def register_hook(optimizer_class_name: str, hook: type[OptimizerHook]) -> None:
    HOOKS[optimizer_class_name] = hook


def register_context_hook(applies: Callable[[Any], bool], hook: type[OptimizerHook]) -> None:
    """Use ``hook`` for every compile for which ``applies(optimizer)`` is true (a compile
    KNNFewShot's program runs for each example it answers, for instance)."""
    CONTEXT_HOOKS.append((applies, hook))


_BUILTIN = ("simba", "mipro", "bootstrap", "gepa", "copro", "random_search", "labeled", "knn")


def _load_builtin_hooks() -> None:
    # Imported on first use: each one registers itself, and imports DSPy's optimizer
    # modules, which `import dspex` should not pay for.
    for module in _BUILTIN:
        importlib.import_module(f"dspex.optimizers.{module}")


def hook_for(journal: ExperimentJournal, optimizer: Any, inputs: dict[str, Any]) -> OptimizerHook:
    _load_builtin_hooks()
    for applies, context_hook in CONTEXT_HOOKS:
        if applies(optimizer):
            return context_hook(journal, optimizer, inputs)
    for cls in type(optimizer).__mro__:
        hook = HOOKS.get(cls.__name__)
        if hook is not None:
            return hook(journal, optimizer, inputs)
    return GenericHook(journal, optimizer, inputs)
