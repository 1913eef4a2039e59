r"""Markdown renderings of trials and experiments, in the layout of the design document.

Data never becomes markup: inline text is escaped (HTML entities, backslashed
punctuation) and long texts go into fenced code blocks::

    >>> print(md("1. <b>*x*</b>"))
    1\. &lt;b&gt;\*x\*&lt;/b&gt;
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dspex.formatting import format_score
from dspex.model import Experiment
from dspex.view.labels import scored, trial_label
from dspex.view.overview import TrialRow, build_overview
from dspex.view.pareto import pareto_front, pareto_lines
from dspex.view.text import (
    NO_VARIABLES,
    _best_lines,
    _header_lines,
    _stats_lines,
    change_lines,
)
from dspex.view.timeline import Timeline

__all__ = ["experiment_markdown", "md", "timeline_markdown"]

_MD_INLINE = re.compile(r"([\\`*_\[\]{}|~])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d+[.)])", re.M)


def md(text: Any) -> str:
    """Escape ``text`` for inline Markdown: HTML special characters become entities and
    Markdown punctuation is backslash-escaped, so data never becomes markup."""
    value = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MD_INLINE.sub(r"\\\1", value)
    return _MD_LINE_START.sub(_escape_line_start, value)


def _escape_line_start(match: re.Match[str]) -> str:
    # "# x", "- x", "1. x" at the start of a line would become a heading or a list.
    mark = match.group(2)
    return match.group(1) + mark[:-1] + "\\" + mark[-1]


def _fenced(lines: list[str], info: str = "text") -> list[str]:
    """``lines`` as a fenced code block, its fence longer than any backtick run inside."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, *lines, fence]


def _code(text: Any) -> str:
    """An inline code span (verbatim, HTML included) around ``text``."""
    value = str(text).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def _md_quote(text: str, max_lines: int | None = None) -> list[str]:
    """``text`` as a fenced code block: Markdown renders it verbatim, HTML included."""
    lines = text.splitlines() or [""]
    shown = lines if max_lines is None else lines[:max_lines]
    if len(shown) < len(lines):
        shown = [*shown, f"… ({len(lines) - len(shown)} more lines)"]
    return _fenced(shown)


def _md_fields(fields: Iterable[tuple[str, str]], indent: str = "") -> list[str]:
    return [f"{indent}* **{md(name)}:** {md(value)}" for name, value in fields]


def _parent_markdown(timeline: Timeline) -> list[str]:
    if timeline.parent is None:
        return []
    how = f" by {_code(timeline.strategy)}" if timeline.strategy else ""
    lines = [f"Derived from {md(trial_label(timeline.parent))}{how}.", ""]
    if not timeline.diffable:
        lines += [f"Changes: {md(NO_VARIABLES)}.", ""]
    for change in timeline.changes:
        lines += _fenced(change_lines(change, width=100, indent=0), "diff")
    return lines


def timeline_markdown(timeline: Timeline, *, max_events: int | None = None) -> str:
    """The trial's timeline as Markdown, in the layout of the design document."""
    lines = [f"# Unified Trace: {md(timeline.title)}", "", *_parent_markdown(timeline)]
    if timeline.window is not None:
        window = timeline.window
        lines += ["", f"*{md(window.said)}*", ""]
        lines += [md(window.more), ""] if window.more else []
    if timeline.time_by_source:
        lines += [
            "",
            "Time: "
            + " · ".join(f"{md(s.label)} {s.fraction:.0%}" for s in timeline.time_by_source),
            "",
        ]
    shown = 0
    for block in timeline.blocks:
        lines += [f"### {block.label}", *_md_fields(block.header), ""]
        for entry in block.entries:
            if max_events is not None and shown >= max_events:
                break
            shown += 1
            indent = "  " * min(entry.depth, 4)
            failed = " ❌" if entry.failed else ""
            if len(block.workers) > 1:
                failed = f" ({_code(entry.event.worker)})" + failed
            lines.append(f"{indent}* **{md(entry.title)}**{failed}")
            lines += _md_fields(entry.fields, indent + "  ")
            for label, text in entry.texts:
                lines += ["", f"**{md(label)}:**", *_md_quote(text), ""]
        lines.append("")
    if shown < timeline.event_count:
        lines += [f"… {timeline.event_count - shown} more events", ""]
    if timeline.problems:
        lines += ["### Errors", ""]
        for problem in timeline.problems:
            lines += [
                f"* **{md(problem.where)}:** {md(problem.type)}: {md(problem.message)}",
                "",
                *_md_quote(problem.traceback),
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def experiment_markdown(experiment: Experiment) -> str:
    """An experiment's overview as Markdown."""
    overview = build_overview(experiment)
    lines = [f"# Experiment {md(experiment.name)}", ""]
    lines += _md_fields(_header_lines(overview))
    lines += ["", "## Summary", "", *_md_fields(_stats_lines(overview)), "", "## Trials", ""]
    lines += [
        "| # | name | score | scope | n | parents | strategy | outcome | LM calls | errors |",
        "|---:|---|---:|---|---:|---|---|---|---:|---:|",
    ]
    for row in overview.rows:
        t = row.trial
        lines.append(
            f"| {t.index} | {md(t.name)} | {format_score(t.score)} | {md(row.scope or '-')} | "
            f"{'' if row.n is None else row.n} | "
            f"{', '.join(str(p) for p in row.parents) or '-'} | {md(row.strategy or '-')} | "
            f"{_outcome(row)} | {row.lm_calls} | {row.errors} |"
        )
    lines += ["", "## Lineage", ""]
    for node in overview.lineage:
        how = f" via {_code(node.strategy)}" if node.strategy else ""
        marks = (f" **{node.outcome.value}**" if node.outcome else "") + (
            " **returned**" if node.returned else ""
        )
        lines.append(
            "  " * node.depth + f"* {md(trial_label(node.trial))} "
            f"({md(scored(node.trial))}){how}{marks}"
        )
    front = pareto_front(experiment)
    if front is not None:
        heading, *members = pareto_lines(front)
        lines += ["", f"## {md(heading)}", "", *(f"* {md(m.strip())}" for m in members)]
    best_lines = _best_lines(overview, 100)
    if best_lines:
        lines += ["", "## Best against baseline", "", *_fenced(best_lines[2:], "")]
    return "\n".join(lines).rstrip() + "\n"


def _outcome(row: TrialRow) -> str:
    text = row.outcome.value if row.outcome else "-"
    return text + (" (returned)" if row.returned else "")
