"""Which scores may be compared: the example set each trial's score was measured on.

A score means something only next to scores of the same metric over the same examples
(:meth:`ScoreScope.comparable_with`): 1.0 on an 8-example minibatch says nothing against
0.4 on a 20-example dev set. Every ranking of trials ("best trial", "best against
baseline", summaries) goes through :func:`reference_scope` and :func:`comparable`.

Trials recorded before scores carried a scope get one from their example results: the
fingerprint of their inputs and labels, as the scoring code computes it::

    >>> from dspex import ExampleResult
    >>> results = (ExampleResult(index=0, inputs={"q": "2+2"}, labels={"a": "4"},
    ...                          metrics={"exact_match": 1.0}),)
    >>> scope = ScoreScope.of_results(results, name="dev", metric="exact_match")
    >>> scope.fingerprint, scope.n
    ('ex_...', 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from dspex.model.intervals import metric_kind
from dspex.model.payloads import TrialScorePayload
from dspex.model.trial import ExampleResult, MetricKind, ScoreScope, Trial, TrialStatus

__all__ = [
    "baseline_in",
    "comparable",
    "example_value",
    "kind_of",
    "reference_scope",
    "scope_of",
    "scored",
    "values_of",
]

_LEGACY_NAMES = {"devset": "dev"}  # what the harness called the dev set before scopes


def example_value(result: ExampleResult, metric: str) -> float:
    """The value ``result`` contributes to a score: the metric, or 0 for a failed example."""
    return 0.0 if result.error is not None else float(result.metrics.get(metric, 0.0))


def scope_of(trial: Trial) -> ScoreScope | None:
    """The example set of ``trial``'s score: recorded, else derived from its example results.

    None when the trial has no score, or a score whose examples were not recorded.
    """
    if trial.score_scope is not None:
        return trial.score_scope
    if trial.score is None or not trial.example_results:
        return None
    metric = _metric_of(trial)
    if metric is None:
        return None
    return ScoreScope.of_results(trial.example_results, name=_name_of(trial), metric=metric)


def _score_payload(trial: Trial) -> TrialScorePayload | None:
    score = trial.summarized_events().trial_score  # the last trial_score event's
    if score is None:
        return None
    return cast(TrialScorePayload, {"score": None, "failures": None, **score})


def _metric_of(trial: Trial) -> str | None:
    score = _score_payload(trial)
    metric = score["metric"] if score is not None else None
    if isinstance(metric, str) and metric:
        return metric
    names = {name for r in trial.example_results for name in r.metrics}
    return names.pop() if len(names) == 1 else None


def _name_of(trial: Trial) -> str:
    score = _score_payload(trial)
    for name in (score["scope"] if score else None, trial.metadata.get("scope")):
        if isinstance(name, str) and name:
            return _LEGACY_NAMES.get(name, name)
    return "examples"


def values_of(trial: Trial, metric: str | None = None) -> list[float]:
    """Per example, in order, the values that make up ``trial``'s score."""
    if metric is None:
        scope = scope_of(trial)
        metric = scope.metric if scope is not None else ""
    return [example_value(r, metric) for r in sorted(trial.example_results, key=_index)]


def _index(result: ExampleResult) -> int:
    return result.index


def kind_of(scope: ScoreScope | None, values: Sequence[float]) -> MetricKind:
    """The metric's kind: as the scope declares it, else as its values show."""
    if scope is not None and scope.kind is not None:
        return scope.kind
    return metric_kind(values)


def scored(trials: Iterable[Trial]) -> list[tuple[Trial, ScoreScope]]:
    """The successful, scored trials whose score has a known scope, with that scope."""
    found = []
    for trial in trials:
        if trial.status is TrialStatus.OK and trial.score is not None:
            scope = scope_of(trial)
            if scope is not None:
                found.append((trial, scope))
    return found


def reference_scope(trials: Iterable[Trial]) -> ScoreScope | None:
    """The example set an experiment's results are judged on.

    The set of the user's own evaluations (``metadata.role == "evaluation"``: the
    harness, ``dspy.Evaluate``) when there are any, the one evaluated most often; else
    the largest set (an optimizer's full validation rather than its minibatches). Ties go
    to the set scored most often, then to the one scored last.
    """
    groups: dict[str, list[tuple[Trial, ScoreScope]]] = {}
    for trial, scope in scored(trials):
        groups.setdefault(scope.key, []).append((trial, scope))
    if not groups:
        return None

    def rank(members: list[tuple[Trial, ScoreScope]]) -> tuple[int, int, int, int]:
        evaluations = sum(1 for t, _ in members if t.metadata.get("role") == "evaluation")
        n = max(s.n for _, s in members)
        return (evaluations, n, len(members), max(t.index for t, _ in members))

    best = max(groups.values(), key=rank)
    return max(best, key=lambda pair: pair[0].index)[1]


def comparable(trials: Iterable[Trial], scope: ScoreScope | None) -> list[Trial]:
    """The successful, scored trials of ``trials`` scored like ``scope``, by index."""
    if scope is None:
        return []
    return sorted((t for t, s in scored(trials) if s.comparable_with(scope)), key=lambda t: t.index)


def baseline_in(trials: Iterable[Trial], scope: ScoreScope | None) -> Trial | None:
    """The first trial scored like ``scope`` that derives from no other (the baseline)."""
    return next((t for t in comparable(trials, scope) if not t.parent_trial_ids), None)
