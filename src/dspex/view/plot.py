"""The score-per-trial plot of an experiment, as coordinates for an inline SVG.

No JS library: the template draws circles (one per scored trial, the best larger)
and lines from each candidate to the one it came from, coloured by strategy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dspex.view.overview import Overview
from dspex.view.timeline import format_score

__all__ = ["Plot", "score_plot"]

PALETTE = ("#0969da", "#8250df", "#bf8700", "#1a7f37", "#cf222e", "#57606a")


@dataclass(frozen=True)
class Plot:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: tuple[dict[str, Any], ...]
    edges: tuple[dict[str, Any], ...]
    xticks: tuple[dict[str, Any], ...]
    yticks: tuple[dict[str, Any], ...]
    legend: tuple[tuple[str, str], ...]


def score_plot(overview: Overview, width: int = 640, height: int = 220) -> Plot | None:
    """Coordinates of the plot, or None when no trial has a score."""
    rows = [r for r in overview.rows if r.trial.score is not None]
    if not rows:
        return None
    left, right, top, bottom = 44, width - 12, 10, height - 30
    scores = [r.trial.score for r in rows if r.trial.score is not None]
    low, high = min(0.0, *scores), max(1.0, *scores)
    indices = [r.trial.index for r in overview.rows]
    first, last = min(indices), max(indices)

    def x(index: int) -> float:
        return left + (index - first) / ((last - first) or 1) * (right - left)

    def y(score: float) -> float:
        return bottom - (score - low) / ((high - low) or 1) * (bottom - top)

    strategies = sorted({_kind(r) for r in rows})
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(strategies)}
    by_id = {r.trial.id: r for r in rows}
    best_id = overview.best.id if overview.best else None
    points, edges = [], []
    for row in rows:
        t = row.trial
        assert t.score is not None
        color = colors[_kind(row)]
        points.append(
            {
                "x": round(x(t.index), 1),
                "y": round(y(t.score), 1),
                "index": t.index,
                "label": f"{format_score(t.score)} ({_kind(row)})",
                "color": color,
                "best": t.id == best_id,
            }
        )
        for parent_id in t.parent_trial_ids:
            parent = by_id.get(parent_id)
            if parent is not None and parent.trial.score is not None:
                edges.append(
                    {
                        "x1": round(x(parent.trial.index), 1),
                        "y1": round(y(parent.trial.score), 1),
                        "x2": round(x(t.index), 1),
                        "y2": round(y(t.score), 1),
                        "color": color,
                    }
                )
    step = max(1, (last - first) // 10)
    xticks = tuple({"x": round(x(i), 1), "label": str(i)} for i in range(first, last + 1, step))
    yticks = tuple(
        {"y": round(y(v), 1), "label": format_score(v)} for v in (low, (low + high) / 2, high)
    )
    return Plot(
        width,
        height,
        left,
        right,
        top,
        bottom,
        tuple(points),
        tuple(edges),
        xticks,
        yticks,
        tuple(colors.items()),
    )


def _kind(row: Any) -> str:
    """What a point stands for: its strategy, a baseline, or another evaluation."""
    if row.strategy:
        return str(row.strategy)
    return "evaluation" if row.trial.parent_trial_ids else "baseline"
