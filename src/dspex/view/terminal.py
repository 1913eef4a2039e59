"""Rich renderables for trials and experiments (``__rich_console__`` of the views).

Data is always wrapped in :class:`rich.text.Text`, never parsed as console markup, so
a ``[bold]`` in a prompt stays text::

    >>> from rich.console import Console
    >>> from dspex import Experiment, ProgramInfo
    >>> from dspex.view import ExperimentView
    >>> console = Console(width=60, record=True, color_system=None)
    >>> console.print(ExperimentView(Experiment(name="[red]x", program=ProgramInfo(name="qa"))))
    ╭─ Experiment [red]x ─...
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dspex.formatting import format_score
from dspex.model import Experiment
from dspex.view.entries import format_ms
from dspex.view.labels import trial_label
from dspex.view.overview import build_overview
from dspex.view.pareto import pareto_front, pareto_lines
from dspex.view.retrievals import rag_stats
from dspex.view.safetext import WRAP_BUDGET, fold_lines, terminal_safe
from dspex.view.text import (
    NO_VARIABLES,
    _header_lines,
    _stats_lines,
    best_against_baseline,
    change_lines,
    lineage_line,
    rag_lines,
    wrap_items,
)
from dspex.view.timeline import Entry, Timeline

__all__ = ["experiment_renderables", "timeline_renderables"]

SOURCE_STYLES = {
    "orchestration": "magenta",
    "execution": "blue",
    "evaluation": "green",
    "waiting": "bright_black",
}
TEXT_LINES = 12
FOLD_WIDTH = 1000
"""Over :data:`~dspex.view.safetext.WRAP_BUDGET`, texts are cut into lines this long
before rich wraps them (rich wraps one long line in quadratic time)."""


class _Items:
    """Items joined by `` · `` and wrapped between items at the console's width (rich
    wraps at any space: ``parent:`` would end a line without its value)."""

    def __init__(self, items: list[str], style: str = "") -> None:
        self.items, self.style = items, style

    def __rich_console__(self, console: Any, options: Any) -> Iterator[RenderableType]:
        for line in wrap_items(self.items, options.max_width):
            yield _text(line, style=self.style)


def _text(value: str, style: str = "") -> Text:
    """Data as rich Text: never markup, and no control character reaches the terminal."""
    return Text(terminal_safe(value), style=style)


def _fields(fields: Iterable[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in fields:
        if len(value) > WRAP_BUDGET:
            value = value[:WRAP_BUDGET] + f"… ({len(value) - WRAP_BUDGET:,} more characters)"
            value = "\n".join(fold_lines(value, FOLD_WIDTH)[0])
        grid.add_row(_text(f"{name}:"), _text(value))
    return grid


def _quoted(label: str, text: str, max_lines: int | None) -> RenderableType:
    from rich.padding import Padding

    if len(text) > WRAP_BUDGET:
        shown, total = fold_lines(text, FOLD_WIDTH, max_lines)
    else:
        lines = text.splitlines() or [""]
        shown, total = (lines if max_lines is None else lines[:max_lines]), len(lines)
    body = _text("\n".join(shown))
    if len(shown) < total:
        body.append(f"\n… {total - len(shown)} more lines", style="dim")
    return Group(_text(f"{label}:", style="dim"), Padding(body, (0, 0, 0, 2)))


def _entry(entry: Entry, max_lines: int | None, show_worker: bool = False) -> RenderableType:
    ts = entry.event.timestamp
    title = Text(ts.strftime("%H:%M:%S.") + f"{ts.microsecond // 1000:03d} ", style="dim")
    title.append(terminal_safe(entry.title), style="bold red" if entry.failed else "bold")
    if show_worker:
        title.append(terminal_safe(f" @{entry.event.worker}"), style="cyan")
    if entry.failed:
        title.append(" [FAILED]", style="red")
    parts: list[RenderableType] = [title]
    if entry.fields:
        parts.append(_fields(entry.fields))
    parts += [_quoted(label, text, max_lines) for label, text in entry.texts]
    return (
        Panel.fit(Group(*parts), border_style="dim")
        if entry.is_lm_call
        else _indent(Group(*parts), 0)
    )


def _indent(renderable: RenderableType, depth: int) -> RenderableType:
    from rich.padding import Padding

    return Padding(renderable, (0, 0, 0, 2 * min(depth, 6)))


def timeline_renderables(
    timeline: Timeline, *, max_lines: int | None = TEXT_LINES
) -> Iterator[RenderableType]:
    """The trial view: title, time bar, parent diff, one panel per block, errors."""
    trial = timeline.trial
    meta = [x for x in (trial.name, trial.id, f"status {trial.status.value}") if x]
    if timeline.parent is not None:
        meta.append(f"parent: {trial_label(timeline.parent)}")
    if timeline.strategy:
        meta.append(f"strategy {timeline.strategy}")
    if timeline.window is None:  # a window's retrievals are its page's, not the trial's
        meta += [f"{name} {value}" for name, value in rag_lines(rag_stats(trial.events))]
    yield _text(timeline.title, style="bold underline")
    yield _Items(meta, style="dim")
    if timeline.window is not None:
        window = timeline.window
        yield _text(window.said + (f"\n{window.more}" if window.more else ""))
    yield from _time_bar(timeline)
    if timeline.parent is not None:
        lines = [f"Changes against parent ({trial_label(timeline.parent)}):"]
        for change in timeline.changes:
            lines += change_lines(change, width=96, indent=2)
        if not timeline.diffable:
            lines.append(f"  {NO_VARIABLES}")
        elif not timeline.changes:
            lines.append("  (none)")
        yield _text("\n".join(lines))
    for block in timeline.blocks:
        body: list[RenderableType] = [_fields(block.header)]
        several = len(block.workers) > 1
        body += [_indent(_entry(e, max_lines, several), e.depth) for e in block.entries]
        yield Panel(
            Group(*body),
            title=_text(f"{block.label} · {block.worker}"),
            title_align="left",
            border_style=SOURCE_STYLES.get(block.source, "white"),
        )
    for problem in timeline.problems:
        yield Panel(
            Group(
                _text(f"{problem.type}: {problem.message}", style="bold red"),
                _text(problem.traceback),
            ),
            title=_text(f"Error in {problem.where}"),
            title_align="left",
            border_style="red",
        )


def _time_bar(timeline: Timeline) -> Iterator[RenderableType]:
    if not timeline.time_by_source:
        return
    bar = Text()
    legend = Text()
    for share in timeline.time_by_source:
        style = SOURCE_STYLES.get(share.label, "white")
        bar.append("█" * max(1, round(share.fraction * 60)), style=style)
        legend.append(
            f"■ {share.label} {share.fraction:.0%} ({format_ms(share.ms)})  ", style=style
        )
    yield bar
    yield legend


def experiment_renderables(experiment: Experiment) -> Iterator[RenderableType]:
    """The experiment view: design, summary, trial table, lineage tree, best vs baseline."""
    overview = build_overview(experiment)
    yield Panel(
        _fields(_header_lines(overview)),
        title=_text(f"Experiment {experiment.name}"),
        title_align="left",
    )
    yield _fields(_stats_lines(overview))
    yield _trial_table(overview)
    tree = Tree(Text("Lineage", style="bold"))
    branches: dict[int, Any] = {-1: tree}
    for node in overview.lineage:
        label = _text(lineage_line(node))
        branches[node.depth] = branches[node.depth - 1].add(label)
    yield tree
    front = pareto_front(experiment)
    if front is not None:
        yield _text("\n".join(pareto_lines(front)))
    lines = ["Best against baseline", *(f"  {x}" for x in best_against_baseline(overview))]
    for change in overview.best_changes:
        lines += change_lines(change, width=96, indent=2)
    yield _text("\n".join(lines))


def _trial_table(overview: Any) -> Table:
    table = Table(title="Trials", title_justify="left")
    for name, justify in (
        ("#", "right"),
        ("name", "left"),
        ("score", "right"),
        ("scope", "left"),
        ("n", "right"),
        ("parents", "left"),
        ("strategy", "left"),
        ("outcome", "left"),
        ("LM calls", "right"),
        ("errors", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in overview.rows:
        t = row.trial
        best = overview.best is not None and overview.best.id == t.id
        table.add_row(
            str(t.index),
            _text(t.name),
            format_score(t.score),
            _text(row.scope or "-"),
            "" if row.n is None else str(row.n),
            ", ".join(str(p) for p in row.parents) or "-",
            _text(row.strategy or "-"),
            (row.outcome.value if row.outcome else "-") + (" · returned" if row.returned else ""),
            str(row.lm_calls),
            str(row.errors),
            style="bold" if best else None,
        )
    return table
