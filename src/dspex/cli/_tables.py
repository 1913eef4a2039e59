"""Tables the CLI prints, as rich tables that fit the terminal's width.

Each function returns the rendered text for a given ``width``, so that commands print
it and tests check it at every width from 80 to 200 columns. A header is never split:
when the columns do not fit, optional ones give way (``drop``, lowest first) before a
wrapping column gets narrower than it wants (``want``)::

    >>> print(render([["a", "1"]], [Column("NAME"), Column("N", justify="right")], width=20))
    NAME  N
    a     1
"""

from __future__ import annotations

import io
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dspex.formatting import format_score
from dspex.model import Experiment, scope_of
from dspex.model.outcomes import return_reason, returned_trial_id, trial_outcome
from dspex.store import ExperimentSummary
from dspex.view.labels import candidate_number, score_scope_of, scored, trial_label
from dspex.view.safetext import terminal_safe
from dspex.view.verdict import verdict_line

__all__ = ["Column", "experiment_summary_text", "ls_table", "render", "terminal_width"]


def terminal_width(default: int = 100) -> int:
    """The terminal's width (``COLUMNS`` when set), ``default`` when not a terminal."""
    return max(40, shutil.get_terminal_size((default, 24)).columns)


@dataclass(frozen=True)
class Column:
    """One column: a header, and how its cells give way when the table is too wide."""

    header: str
    justify: Literal["left", "right"] = "left"
    wrap: bool = False
    """Whether cells may wrap (otherwise they are cut with an ellipsis)."""
    min_width: int | None = None
    ratio: int | None = None
    want: int = 0
    """For a wrapping column: the width below which optional columns give way first."""
    drop: int | None = None
    """Optional column: the order in which it gives way when the table is too wide."""


def render(rows: Sequence[Sequence[Any]], columns: Sequence[Column], *, width: int) -> str:
    """``rows`` as a borderless table no wider than ``width``; data is never markup.

    Columns that do not wrap keep their widest cell; the others share what is left.
    """
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    kept = _fitting(columns, cells, width)
    widths = _widths([columns[n] for n in kept], [[r[n] for n in kept] for r in cells], width)
    table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, show_edge=False)
    for number, column_width in zip(kept, widths, strict=True):
        column = columns[number]
        table.add_column(
            column.header,
            justify=column.justify,
            no_wrap=not column.wrap,
            overflow="fold" if column.wrap else "ellipsis",
            width=column_width,
        )
    for row in cells:  # data never reaches the terminal with its control characters
        table.add_row(*(Text(terminal_safe(row[number])) for number in kept))
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, soft_wrap=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def _least(column: Column, widest: int) -> int:
    """The narrowest a wrapping column may be: its header's length (never split), and its
    ``want`` (or its widest cell, when narrower)."""
    return max(len(column.header), column.min_width or 0, min(widest, column.want))


def _widths(columns: Sequence[Column], cells: list[list[str]], width: int) -> list[int]:
    """Each column's width: a column that does not wrap its widest cell; the wrapping ones
    share what is left by ratio, none wider than its widest cell nor narrower than its
    header (the table may then be wider than ``width``: a header is never split)."""
    widest = [max([len(c.header), *(len(r[n]) for r in cells)]) for n, c in enumerate(columns)]
    fixed = sum(w for c, w in zip(columns, widest, strict=True) if not c.wrap)
    left = width - fixed - 2 * (len(columns) - 1)
    wrapping = [n for n, c in enumerate(columns) if c.wrap]
    result = list(widest)
    while wrapping:
        share = sum(columns[n].ratio or 1 for n in wrapping)
        grants = {n: left * (columns[n].ratio or 1) // share for n in wrapping}
        capped = [n for n in wrapping if grants[n] >= widest[n]]
        if not capped:  # everyone wraps: give each its share, at least its header
            for n in wrapping:
                result[n] = max(len(columns[n].header), grants[n])
            break
        for n in capped:  # these fit whole: what they leave goes to the others
            result[n] = widest[n]
            left -= widest[n]
            wrapping.remove(n)
    return result


def _fitting(columns: Sequence[Column], cells: list[list[str]], width: int) -> list[int]:
    """The numbers of the columns to show: every one, less the optional ones that must
    give way (``drop`` order) for the rest to fit ``width``."""
    kept = list(range(len(columns)))

    def needed() -> int:
        total = 2 * (len(kept) - 1)
        for number in kept:
            widest = max([len(columns[number].header), *(len(r[number]) for r in cells)])
            total += _least(columns[number], widest) if columns[number].wrap else widest
        return total

    optional = sorted((c.drop, n) for n, c in enumerate(columns) if c.drop is not None)
    while needed() > width and optional:
        kept.remove(optional.pop(0)[1])
    return kept


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def ls_table(summaries: Sequence[ExperimentSummary], *, width: int) -> str:
    """``dspex experiments ls``: one row per experiment; on narrower terminals the creation
    time gives way first, then the optimizer, the program, the trial count, the verdict."""
    columns = [
        Column("ID"),
        Column("NAME", wrap=True, ratio=2, want=16),
        Column("PROGRAM", wrap=True, ratio=1, want=12, drop=3),
        Column("OPTIMIZER", drop=2),
        Column("STATUS"),
        Column("CREATED", drop=1),
        Column("TRIALS", justify="right", drop=4),
        Column("BEST", justify="right"),
        Column("ON"),
        Column("VERDICT", drop=5),
    ]
    rows = []
    for s in summaries:
        best = "" if s.best_score is None else format_score(s.best_score)
        on = s.score_scope.label.replace(" ", "") if s.score_scope else ""
        rows.append([s.id, s.name, s.program, s.optimizer or "-", s.status.value,
                     s.created_at.strftime("%Y-%m-%d %H:%M"), s.trial_count, best, on,
                     s.verdict.value if s.verdict else "-"])  # fmt: skip
    return render(rows, columns, width=width)


def trials_table(experiment: Experiment, *, width: int) -> str:
    """The trials of ``experiment``: row and candidate numbers, score with its scope."""
    columns = [
        Column("#", justify="right"),
        Column("CAND", justify="right"),
        Column("NAME", wrap=True, ratio=1, want=16),
        Column("STATUS"),
        Column("SCORE", justify="right"),
        Column("SCOPE", min_width=5),
        Column("N", justify="right"),
        Column("OUTCOME", drop=3),
        Column("EVENTS", justify="right", drop=2),
        Column("TIME", justify="right"),
        Column("ID", drop=1),
    ]
    rows = []
    returned = returned_trial_id(experiment.trials)
    for t in sorted(experiment.trials, key=lambda t: t.index):
        scope = score_scope_of(t)
        number = candidate_number(t)
        duration = "" if t.duration_ms is None else _duration(t.duration_ms)
        outcome = trial_outcome(t)
        marks = [outcome.value] if outcome is not None else []
        decided = ", ".join(marks + (["returned"] if t.id == returned else []))
        rows.append(
            [t.index, "" if number is None else f"c{number}", t.name, t.status.value,
             format_score(t.score) if t.score is not None else "", scope.name or "",
             "" if scope.n is None else scope.n, decided or "-", t.summarized_events().events,
             duration, t.id]
        )  # fmt: skip
    return render(rows, columns, width=width)


def _duration(ms: float) -> str:
    return f"{ms:.0f}ms" if ms < 1000 else f"{ms / 1000:.1f}s"


def experiment_summary_text(experiment: Experiment, *, width: int) -> str:
    """``dspex experiments show ID``: what the experiment tested, its result, its trials."""
    e = experiment
    best = e.best_trial
    fields = [
        ("id", e.id),
        ("name", e.name),
        ("program", f"{e.program.name} {e.program.class_path}".strip()),
        ("optimizer", e.optimizer.name if e.optimizer else "none"),
        ("status", e.status.value),
        ("created", _when(e.created_at)),
        ("completed", _when(e.completed_at)),
        ("tags", ", ".join(e.tags)),
        ("hypothesis", _hypothesis(e)),
        ("verdict", verdict_line(e.hypothesis.verdict) if e.hypothesis else ""),
        ("best score", scored(best) if best is not None and best.score is not None else ""),
        ("best trial", f"#{best.index} {best.name} ({best.id})" if best is not None else ""),
        *_returned(e),
        ("scored on", _scope_line(e)),
        ("export", _export_note(e.metadata.get("otlp_export"))),
        *(("warning", w) for w in e.warnings),
    ]
    head = render([(name + ":", value) for name, value in fields if value],
                  [Column(""), Column("", wrap=True)], width=width)  # fmt: skip
    head = "\n".join(line for line in head.splitlines() if line.strip())
    head += _export_resend(e.metadata.get("otlp_export"))
    if not e.trials:
        return head + "\n\nno trials"
    hint = textwrap.fill(
        f"One trial's timeline: dspex experiments show {e.id} --trial N (the # column), "
        "or --trial cN (candidate N).",
        width=width,
        break_on_hyphens=False,
    )
    return f"{head}\n\ntrials ({len(e.trials)}):\n{trials_table(e, width=width)}\n\n{hint}"


def _returned(e: Experiment) -> list[tuple[str, str]]:
    """The candidate the compile returned, its score with its scope, and why."""
    reason = return_reason(e.trials, {t.id: trial_label(t) for t in e.trials})
    if reason is None:
        return []
    trial = e.trial(reason.trial_id)
    return [
        ("returned", f"#{trial.index} {trial.name}: {scored(trial)}"),
        ("why returned", reason.line),
    ]


def _export_note(report: Any) -> str:
    """The live OTLP export's report (``metadata.otlp_export``) in one line."""
    if not isinstance(report, dict):
        return ""
    undelivered = report.get("undelivered") or []
    head = f"{report.get('trials')} trials to {report.get('endpoint')}"
    if not undelivered:
        return head + ", all delivered"
    return f"{head}, {len(undelivered)} NOT delivered ({report.get('error')}); send them with:"


def _export_resend(report: Any) -> str:
    """The command that delivers what the live export could not, on a line of its own (a
    wrapped command cannot be pasted)."""
    if isinstance(report, dict) and report.get("undelivered") and report.get("resend"):
        return f"\n  {report['resend']}"
    return ""


def _scope_line(e: Experiment) -> str:
    scope = scope_of(e.best_trial) if e.best_trial else None
    return f"{scope.label}, scope key {scope.key}" if scope else ""


def _hypothesis(e: Experiment) -> str:
    if e.hypothesis is None:
        return ""
    return f"{e.hypothesis.research_question} [{e.hypothesis.status.value}]"
