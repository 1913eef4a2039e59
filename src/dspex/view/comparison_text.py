"""Two trials or two experiments side by side as plain text and as rich renderables.

>>> from dspex.view.comparison_text import example_line
>>> example_line.__name__
'example_line'
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from dspex.analysis import ExamplePair
from dspex.formatting import format_p
from dspex.view.comparison import ExperimentsSideBySide, TrialsSideBySide
from dspex.view.text import change_lines, wrap_field

__all__ = [
    "example_line",
    "experiments_renderables",
    "experiments_text",
    "prediction_text",
    "short_text",
    "statistics_rows",
    "trials_renderables",
    "trials_text",
]

MARKS = {"win": "B better", "loss": "A better", "tie": "same"}


def short_text(value: Any, limit: int = 80) -> str:
    """``value`` on one line of at most ``limit`` characters (a one-key dict by its value)."""
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prediction_text(pair: ExamplePair, side: str) -> str:
    result = pair.a if side == "a" else pair.b
    if result.error is not None:
        return f"error {result.error.type}"
    return short_text(result.prediction) if result.prediction is not None else "–"


def example_line(pair: ExamplePair) -> str:
    """``[B better] #3 A 0 -> B 1 | What is 12 + 30? | expected 42 | A: 41 | B: 42``."""
    return (
        f"[{MARKS[pair.outcome]}] #{pair.a.index} A {pair.value_a:g} -> B {pair.value_b:g} | "
        f"{short_text(pair.a.inputs)} | expected {short_text(pair.a.labels)} | "
        f"A: {prediction_text(pair, 'a')} | B: {prediction_text(pair, 'b')}"
    )


def statistics_rows(view: TrialsSideBySide) -> list[tuple[str, str]]:
    """The paired statistics as labelled rows, or why there are none."""
    c = view.comparison
    if c is None:
        return [("not comparable", view.not_comparable or "")]
    effect = "n/a (no example differs)" if c.effect_size is None else f"{c.effect_size:+.2f}"
    return [
        ("examples", f"{c.n} scored by both on {c.scope.label}, metric {c.scope.metric}"),
        ("means", f"A {c.mean_a:.3f}, B {c.mean_b:.3f}"),
        ("difference (B - A)", f"{c.difference:+.3f} ({c.interval.describe()})"),
        ("per example", f"B better on {c.wins}, A better on {c.losses}, same on {c.ties}"),
        ("test", f"{c.test}, p = {format_p(c.p_value)}"),
        ("effect size", f"{effect} (rank-biserial correlation)"),
    ]


def _heading(title: str, width: int) -> list[str]:
    return ["", f"── {title} " + "─" * max(width - len(title) - 4, 0)]


def trials_text(view: TrialsSideBySide, *, width: int = 100, max_examples: int | None = 50) -> str:
    """The side-by-side view as plain text; ``max_examples`` rows of examples, flips first."""
    lines: list[str] = []
    for side in (view.a, view.b):
        lines += wrap_field(
            f"{side.letter}",
            f"{side.title} of {side.experiment.name} ({side.experiment.id}): {side.score_text}",
            width=width,
            indent=0,
        )
    for line in view.unread:
        lines += textwrap.wrap(line, width=width)
    lines += _heading("Statistics", width)
    for name, value in statistics_rows(view):
        lines += wrap_field(name, value, width=width, indent=2)
    lines += _heading("Variables (A -> B)", width)
    for change in view.changes:
        lines += change_lines(change, width=width, indent=2)
    if not view.changes:
        lines.append("  (the same instructions, demos and LM settings)")
    lines += _heading("Cost and time (A, B, B - A)", width)
    for row in view.costs:
        lines.append(
            f"  {row.name:<15} {row.show(row.a):>13} {row.show(row.b):>13} {row.difference:>13}"
        )
    lines += _retrieval_lines(view, width, max_examples)
    lines += _example_lines(view, width, max_examples)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def retrieval_rows(view: TrialsSideBySide, limit: int | None = 10) -> list[tuple[str, str]]:
    """``("#3 A", "'capital Peru' -> 1, 4, 7")`` pairs for the examples whose retrieved
    passages differ (the first ``limit``)."""
    diff = view.retrievals
    if diff is None:
        return []
    rows = []
    for a, b in diff.differ if limit is None else diff.differ[:limit]:
        for letter, side in (("A", a), ("B", b)):
            queries = " | ".join(short_text(q, 60) for q in side.queries)
            found = " | ".join(", ".join(ids) or "(none)" for ids in side.found)
            rows.append((f"#{a.index} {letter}", f"{queries} -> {short_text(found, 80)}"))
    return rows


def _retrieval_lines(view: TrialsSideBySide, width: int, max_examples: int | None) -> list[str]:
    if view.retrievals is None:
        return []
    lines = _heading("Retrievals", width)
    lines += textwrap.wrap(
        view.retrievals.describe(), width=width, initial_indent="  ", subsequent_indent="    "
    )
    limit = None if max_examples is None else min(max_examples, 10)
    for name, value in retrieval_rows(view, limit):
        lines += wrap_field(name, value, width=width, indent=4)
    shown = len(view.retrievals.differ) if limit is None else limit
    if len(view.retrievals.differ) > shown:
        lines.append(f"    ... {len(view.retrievals.differ) - shown} more examples")
    return lines


def _example_lines(view: TrialsSideBySide, width: int, max_examples: int | None) -> list[str]:
    if view.comparison is None:
        return []
    pairs = view.comparison.ordered_pairs()
    shown = pairs if max_examples is None else pairs[:max_examples]
    lines = _heading(f"Examples ({len(view.comparison.flips)} differ; they come first)", width)
    for pair in shown:
        lines += textwrap.wrap(
            example_line(pair), width=width, initial_indent="  ", subsequent_indent="      "
        )
    if len(shown) < len(pairs):
        lines.append(f"  ... {len(pairs) - len(shown)} more examples, all scored the same")
    return lines


def experiments_text(view: ExperimentsSideBySide, *, width: int = 100) -> str:
    """Two experiments: settings that differ, then their best trials side by side."""
    lines = []
    for letter, exp in (("A", view.a), ("B", view.b)):
        lines += wrap_field(letter, f"experiment {exp.name} ({exp.id})", width=width, indent=0)
    lines += _heading("Settings that differ (A, B)", width)
    for diff in view.settings:
        lines += wrap_field(
            diff.key, f"{short_text(diff.a)}  ->  {short_text(diff.b)}", width=width, indent=2
        )
    if not view.settings:
        lines.append("  (none)")
    if view.trials is None:
        lines += _heading("Best trials", width)
        lines += wrap_field("not comparable", view.not_comparable or "", width=width, indent=2)
        return "\n".join(line.rstrip() for line in lines) + "\n"
    assert view.result is not None
    lines += _heading(f"Best trials on the shared set, {view.result.scope.label}", width)
    return "\n".join(line.rstrip() for line in lines) + "\n" + trials_text(view.trials, width=width)


def _grid(rows: list[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(Text(f"{name}:"), Text(value))
    return grid


def trials_renderables(view: TrialsSideBySide) -> Iterator[RenderableType]:
    """The side-by-side view for a terminal (data is always Text, never console markup)."""
    yield _grid(
        [
            (side.letter, f"{side.title} of {side.experiment.name}: {side.score_text}")
            for side in (view.a, view.b)
        ]
    )
    for line in view.unread:
        yield Text(line)
    yield Text("Statistics", style="bold underline")
    yield _grid(statistics_rows(view))
    changes = [line for c in view.changes for line in change_lines(c, width=96, indent=2)]
    yield Text("Variables (A -> B)", style="bold underline")
    yield Text("\n".join(changes) or "  (the same)")
    costs = Table(title="Cost and time", title_justify="left")
    for name in ("", "A", "B", "B - A"):
        costs.add_column(name, justify="left" if not name else "right")
    for row in view.costs:
        costs.add_row(row.name, row.show(row.a), row.show(row.b), row.difference)
    yield costs
    if view.retrievals is not None:
        yield Text("Retrievals", style="bold underline")
        yield Text(view.retrievals.describe())
        rows = retrieval_rows(view)
        if rows:
            yield _grid(rows)
    if view.comparison is not None:
        examples = Table(title="Examples, those that differ first", title_justify="left")
        for name in ("#", "A", "B", "outcome", "inputs", "A answered", "B answered"):
            examples.add_column(name, overflow="fold")
        for pair in view.comparison.ordered_pairs()[:50]:
            examples.add_row(
                str(pair.a.index),
                f"{pair.value_a:g}",
                f"{pair.value_b:g}",
                MARKS[pair.outcome],
                Text(short_text(pair.a.inputs, 60)),
                Text(prediction_text(pair, "a")),
                Text(prediction_text(pair, "b")),
            )
        yield examples


def experiments_renderables(view: ExperimentsSideBySide) -> Iterator[RenderableType]:
    yield _grid([("A", f"{view.a.name} ({view.a.id})"), ("B", f"{view.b.name} ({view.b.id})")])
    yield Text("Settings that differ", style="bold underline")
    rows = [(d.key, f"{short_text(d.a)}  ->  {short_text(d.b)}") for d in view.settings]
    yield _grid(rows or [("", "(none)")])
    if view.trials is None:
        yield _grid([("not comparable", view.not_comparable or "")])
        return
    yield from trials_renderables(view.trials)
