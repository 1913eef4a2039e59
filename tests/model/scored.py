"""Trials scored on known examples, for the tests of scopes, comparisons and verdicts.

trial = scored_trial(exp_id, 0, [1, 0, 1], examples=dev(3), name="baseline")
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dspex import ErrorInfo, ExampleResult, Experiment, ProgramInfo, ScoreScope, Trial, new_id
from dspex.model import best_trial_of, summarize

Example = tuple[dict[str, Any], dict[str, Any]]
START = datetime(2026, 5, 1, tzinfo=UTC)


def dev(n: int, offset: int = 0) -> list[Example]:
    """``n`` arithmetic examples (``offset`` picks a different, disjoint set)."""
    return [
        ({"question": f"What is {i} + {i + 1}?"}, {"answer": str(2 * i + 1)})
        for i in range(offset, offset + n)
    ]


def scored_trial(
    experiment_id: str,
    index: int,
    values: Sequence[float],
    *,
    examples: Sequence[Example] | None = None,
    name: str = "",
    parents: Sequence[str] = (),
    role: str = "evaluation",
    scope: str | None = "dev",
    metric: str = "exact_match",
    failed: Sequence[int] = (),
) -> Trial:
    """A trial whose example ``i`` scored ``values[i]`` (``failed`` examples raised).

    ``scope=None`` records no score scope, as trials written before scopes existed.
    """
    examples = list(examples if examples is not None else dev(len(values)))
    results = tuple(
        ExampleResult(
            index=i,
            inputs=inputs,
            labels=labels,
            prediction={"answer": labels["answer"] if value else "?"},
            metrics={} if i in failed else {metric: float(value)},
            latency_ms=10.0 + i,
            tokens=100 + i,
            error=ErrorInfo(type="ValueError", message="boom") if i in failed else None,
        )
        for i, ((inputs, labels), value) in enumerate(zip(examples, values, strict=True))
    )
    score = sum(0.0 if i in failed else float(v) for i, v in enumerate(values)) / len(values)
    started = START + timedelta(seconds=index)
    return Trial(
        experiment_id=experiment_id,
        index=index,
        name=name or f"trial {index}",
        parent_trial_ids=tuple(parents),
        example_results=results,
        score=score,
        score_scope=ScoreScope.of_results(results, name=scope, metric=metric) if scope else None,
        started_at=started,
        finished_at=started + timedelta(seconds=1),
        metadata={"role": role},
    )


def experiment_of(trials: Sequence[Trial], experiment_id: str, **fields: Any) -> Experiment:
    """A completed experiment of ``trials``, best trial and summary set as the journal does."""
    best = best_trial_of(list(trials))
    values: dict[str, Any] = dict(
        id=experiment_id,
        name="scored",
        program=ProgramInfo(name="qa"),
        status="completed",
        trials=tuple(trials),
        best_trial_id=best.id if best else None,
        summary=summarize(list(trials)) if trials else None,
        completed_at=START + timedelta(minutes=5),
    )
    values.update(fields)
    return Experiment(**values)


def demo_like(experiment_id: str | None = None) -> Experiment:
    """The issue's shape: a dev baseline, minibatch candidates scoring 1.0, a dev final."""
    exp_id = experiment_id or new_id("exp")
    baseline = scored_trial(exp_id, 0, [1, 0, 0, 1, 0, 0, 1, 0, 0, 1] * 2, name="baseline")
    candidates = [
        scored_trial(exp_id, i, [1] * 8, examples=dev(8, offset=100 + 10 * i), role="candidate",
                     scope="minibatch", parents=(baseline.id,), name=f"candidate {i}")
        for i in (1, 2)
    ]  # fmt: skip
    final = scored_trial(
        exp_id, 3, [1, 1, 0, 1, 1, 1, 1, 1, 0, 1] * 2, name="optimized", parents=(candidates[0].id,)
    )
    return experiment_of([baseline, *candidates, final], exp_id)
