"""The experiment's score plot: best so far per optimizer step, one panel per scope.

Scores of different example sets are never drawn as one line: each scope name
(``minibatch``, ``full``, ``dev``...) gets its own panel, with every scored trial as a
point (linking to its trial) and a step line through the best score so far. When a
scope's trials were scored on one example set the line is the running best; minibatches
differ from step to step, so there the line is each step's own best. The baseline is a
dashed reference line, labelled with the example set it was measured on. No JS library:
the template draws inline SVG from these coordinates.

    >>> from dspex import Experiment, ProgramInfo
    >>> from dspex.view.overview import build_overview
    >>> score_plot(build_overview(Experiment(name="e", program=ProgramInfo(name="qa")))) is None
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dspex.formatting import format_score
from dspex.model import ScoreScope, Trial
from dspex.model.outcomes import scored_text
from dspex.model.scopes import scope_of, scored
from dspex.view.overview import Overview

__all__ = ["Panel", "Plot", "score_plot", "steps_of"]

PALETTE = ("#0969da", "#8250df", "#bf8700", "#1a7f37", "#cf222e", "#57606a")
LEFT, RIGHT_PAD, TOP, BOTTOM_PAD = 44, 12, 22, 28


@dataclass(frozen=True)
class Panel:
    """One scope's plot area; coordinates are in this panel's own SVG."""

    title: str
    color: str
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: tuple[dict[str, Any], ...]
    best_path: str  # SVG path "M x y H x V y ..." of the best-so-far step line
    best_label: str
    baseline: dict[str, Any] | None
    xticks: tuple[dict[str, Any], ...]
    yticks: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Plot:
    width: int
    xlabel: str
    panels: tuple[Panel, ...]

    @property
    def point_count(self) -> int:
        return sum(len(p.points) for p in self.panels)


def steps_of(trials: Sequence[Trial]) -> tuple[dict[str, int], str]:
    """The x position of each trial: its optimizer step, and the axis label.

    Trials without a step (evaluations, full validations) sit at the step of the trial
    before them, the baseline at 0 and anything after the last step one step later.
    Without any step, the trial index.
    """
    ordered = sorted(trials, key=lambda t: t.index)
    recorded: dict[str, int] = {}
    for trial in ordered:
        step = trial.metadata.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            recorded[trial.id] = step
    if not recorded:
        return {t.id: t.index for t in ordered}, "trial"
    last = max(recorded.values())
    first_stepped = min(t.index for t in ordered if t.id in recorded)
    last_stepped = max(t.index for t in ordered if t.id in recorded)
    positions: dict[str, int] = {}
    current = 0
    for trial in ordered:
        if trial.id in recorded:
            current = recorded[trial.id]
        elif trial.index < first_stepped:
            current = 0
        elif trial.index > last_stepped:
            current = last + 1
        positions[trial.id] = current
    return positions, "optimizer step"


def score_plot(
    overview: Overview,
    width: int = 640,
    panel_height: int = 170,
    trial_url: Callable[[Trial], str] | None = None,
) -> Plot | None:
    """The plot's coordinates, or None when no trial has a score over recorded examples."""
    pairs = scored(overview.experiment.trials)
    if not pairs:
        return None
    x_of, xlabel = steps_of(overview.experiment.trials)
    series: dict[str, list[tuple[Trial, ScoreScope]]] = {}
    for trial, scope in sorted(pairs, key=lambda p: p[0].index):
        series.setdefault(scope.name, []).append((trial, scope))
    xs = [x_of[t.id] for t, _ in pairs]
    scores = [t.score for t, _ in pairs if t.score is not None]
    frame = _Frame(width, panel_height, min(xs), max(xs), min(0.0, *scores), max(1.0, *scores))
    panels = tuple(
        _panel(name, members, PALETTE[i % len(PALETTE)], frame, x_of, overview, trial_url)
        for i, (name, members) in enumerate(series.items())
    )
    return Plot(width=width, xlabel=xlabel, panels=panels)


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int
    first: int
    last: int
    low: float
    high: float

    @property
    def right(self) -> int:
        return self.width - RIGHT_PAD

    @property
    def bottom(self) -> int:
        return self.height - BOTTOM_PAD

    def x(self, step: float) -> float:
        span = (self.last - self.first) or 1
        return round(LEFT + (step - self.first) / span * (self.right - LEFT), 1)

    def y(self, score: float) -> float:
        span = (self.high - self.low) or 1
        return round(self.bottom - (score - self.low) / span * (self.bottom - TOP), 1)


def _panel(
    name: str,
    members: list[tuple[Trial, ScoreScope]],
    color: str,
    frame: _Frame,
    x_of: dict[str, int],
    overview: Overview,
    trial_url: Callable[[Trial], str] | None,
) -> Panel:
    best_id = overview.best.id if overview.best else None
    returned_id = overview.returned.id if overview.returned else None
    outcomes = {row.trial.id: row.outcome for row in overview.rows}
    one_set = len({s.key for _, s in members}) == 1
    points = []
    for t, s in members:
        outcome = outcomes.get(t.id)
        marks = (f" · {outcome}" if outcome else "") + (
            " · returned" if t.id == returned_id else ""
        )
        points.append(
            {
                "x": frame.x(x_of[t.id]),
                "y": frame.y(t.score or 0.0),
                "index": t.index,
                "trial": t.id,
                "href": trial_url(t) if trial_url else None,
                "label": f"Trial {t.index}"
                + (f" · {t.name}" if t.name else "")
                + f": {scored_text(t.score, s.name, s.n)}, step {x_of[t.id]}{marks}",
                "best": t.id == best_id,
                "outcome": outcome.value.replace(" ", "-") if outcome else "",
                "returned": t.id == returned_id,
            }
        )
    sizes = sorted({s.n for _, s in members})
    n = f"n={sizes[0]}" if len(sizes) == 1 else f"n={sizes[0]}..{sizes[-1]}"
    kind = "one example set" if one_set else f"{len({s.key for _, s in members})} example sets"
    return Panel(
        title=f"{name} ({n}, {kind})",
        color=color,
        height=frame.height,
        left=LEFT,
        right=frame.right,
        top=TOP,
        bottom=frame.bottom,
        points=tuple(points),
        best_path=_best_path(members, frame, x_of, running=one_set),
        best_label="best so far" if one_set else "best of each step (its own minibatch)",
        baseline=_baseline(overview, frame, members),
        xticks=_xticks(frame),
        yticks=tuple(
            {"y": frame.y(v), "label": format_score(v)}
            for v in (frame.low, (frame.low + frame.high) / 2, frame.high)
        ),
    )


def _best_path(
    members: list[tuple[Trial, ScoreScope]], frame: _Frame, x_of: dict[str, int], running: bool
) -> str:
    per_step: dict[int, float] = {}
    for trial, _ in members:
        step = x_of[trial.id]
        per_step[step] = max(per_step.get(step, float("-inf")), trial.score or 0.0)
    path: list[str] = []
    best = float("-inf")
    for step in sorted(per_step):
        best = max(best, per_step[step]) if running else per_step[step]
        x, y = frame.x(step), frame.y(best)
        path.append(f"M {x} {y}" if not path else f"H {x} V {y}")
    if path:
        path.append(f"H {frame.x(max(per_step))}")
    return " ".join(path)


def _baseline(
    overview: Overview, frame: _Frame, members: list[tuple[Trial, ScoreScope]]
) -> dict[str, Any] | None:
    baseline = overview.baseline or overview.root
    scope = scope_of(baseline) if baseline is not None else None
    if baseline is None or baseline.score is None or scope is None:
        return None
    own = any(s.comparable_with(scope) for _, s in members)
    return {
        "y": frame.y(baseline.score),
        "label": f"baseline {scored_text(baseline.score, scope.name, scope.n)}"
        + ("" if own else ": another example set"),
        "own": own,
    }


def _xticks(frame: _Frame) -> tuple[dict[str, Any], ...]:
    step = max(1, (frame.last - frame.first) // 10)
    return tuple(
        {"x": frame.x(i), "label": str(i)} for i in range(frame.first, frame.last + 1, step)
    )
