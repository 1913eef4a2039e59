"""Two experiments side by side: their best trials on a shared example set, and what differs
in how they were set up.

    result = compare_experiments(exp_a, exp_b)
    result.scope.name, result.comparison.difference, result.settings[0]
    # ('dev', 0.15, SettingDiff(key='optimizer.settings.max_steps', a=4, b=8))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dspex.analysis.compare import Comparison, compare, describe_scope
from dspex.errors import NotComparableError
from dspex.model import Experiment, ScoreScope, Trial, best_trial_of, reference_scope
from dspex.model.scopes import scored

__all__ = [
    "ExperimentComparison",
    "SettingDiff",
    "compare_experiments",
    "settings_diff",
    "shared_scope",
]


@dataclass(frozen=True)
class SettingDiff:
    """One setting that differs: its dotted key and the value in each experiment."""

    key: str
    a: Any
    b: Any


@dataclass(frozen=True)
class ExperimentComparison:
    a: Experiment
    b: Experiment
    scope: ScoreScope
    best_a: Trial
    best_b: Trial
    comparison: Comparison
    settings: tuple[SettingDiff, ...]


def shared_scope(a: Experiment, b: Experiment) -> ScoreScope:
    """The example set both experiments scored trials on: the reference set of ``a`` when
    ``b`` has it, else ``b``'s when ``a`` has it, else the largest shared one."""
    scopes_a = {s.key: s for _, s in scored(a.trials)}
    scopes_b = {s.key: s for _, s in scored(b.trials)}
    for preferred in (reference_scope(a.trials), reference_scope(b.trials)):
        if preferred is not None and preferred.key in scopes_a and preferred.key in scopes_b:
            return preferred
    shared = [scopes_a[k] for k in scopes_a.keys() & scopes_b.keys()]
    if shared:
        return max(shared, key=lambda s: (s.n, s.key))
    raise NotComparableError(
        f"experiments {a.id} and {b.id} scored no trial on the same examples with the same "
        f"metric ({a.id}: {_sets(scopes_a)}; {b.id}: {_sets(scopes_b)}); evaluate both "
        "programs on one dev set to compare them"
    )


def _sets(scopes: dict[str, ScoreScope]) -> str:
    return ", ".join(describe_scope(s) for s in scopes.values()) or "no scored examples"


def compare_experiments(a: Experiment, b: Experiment, *, seed: int = 0) -> ExperimentComparison:
    """The best trial of each experiment on their shared example set, compared (b - a)."""
    scope = shared_scope(a, b)
    best_a, best_b = best_trial_of(a.trials, scope), best_trial_of(b.trials, scope)
    assert best_a is not None and best_b is not None  # shared_scope found trials in both
    return ExperimentComparison(
        a=a,
        b=b,
        scope=scope,
        best_a=best_a,
        best_b=best_b,
        comparison=compare(best_a, best_b, seed=seed),
        settings=settings_diff(a, b),
    )


def settings_diff(a: Experiment, b: Experiment) -> tuple[SettingDiff, ...]:
    """Program, optimizer and its settings, versions, tags and hypothesis that differ."""
    flat_a, flat_b = _settings(a), _settings(b)
    return tuple(
        SettingDiff(key, flat_a.get(key), flat_b.get(key))
        for key in sorted(flat_a.keys() | flat_b.keys())
        if flat_a.get(key) != flat_b.get(key)
    )


def _settings(experiment: Experiment) -> dict[str, Any]:
    flat: dict[str, Any] = {
        "program": experiment.program.name,
        "program.class_path": experiment.program.class_path,
        "optimizer": experiment.optimizer.name if experiment.optimizer else None,
        "dspy_version": experiment.environment.dspy_version,
        "dspex_version": experiment.environment.dspex_version,
        "python_version": experiment.environment.python_version,
        "tags": ", ".join(experiment.tags),
        "hypothesis": experiment.hypothesis.research_question if experiment.hypothesis else None,
    }
    if experiment.optimizer is not None:
        _flatten("optimizer.settings", experiment.optimizer.settings, flat)
    return flat


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, into)
    elif isinstance(value, list):
        into[prefix] = json.dumps(value, ensure_ascii=False, default=str)
    else:
        into[prefix] = value
