"""Tables the CLI prints, as rich tables that fit the terminal's width.

Each function returns the rendered text for a given ``width``, so that commands print
it and tests compare it at 80 and 100 columns::

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

from dspex.model import Experiment, scope_of
from dspex.store import ExperimentSummary
from dspex.view.labels import candidate_number, score_scope_of
from dspex.view.safetext import terminal_safe
from dspex.view.timeline import format_score
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


def render(rows: Sequence[Sequence[Any]], columns: Sequence[Column], *, width: int) -> str:
    """``rows`` as a borderless table no wider than ``width``; data is never markup.

    Columns that do not wrap keep their widest cell; the others share what is left.
    """
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, show_edge=False)
    for number, column in enumerate(columns):
        widest = max([len(column.header), *(len(row[number]) for row in cells)])
        table.add_column(
            column.header,
            justify=column.justify,
            no_wrap=not column.wrap,
            overflow="fold" if column.wrap else "ellipsis",
            min_width=column.min_width if column.wrap else widest,
            ratio=column.ratio,
        )
    for row in cells:  # data never reaches the terminal with its control characters
        table.add_row(*(Text(terminal_safe(cell)) for cell in row))
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, soft_wrap=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def ls_table(summaries: Sequence[ExperimentSummary], *, width: int) -> str:
    """``dspex experiments ls``: one row per experiment (fewer columns on narrow terminals:
    the optimizer and creation time need 120 columns, the trial count and verdict 100)."""
    wide, medium = width >= 120, width >= 100
    columns = [
        Column("ID"),
        Column("NAME", wrap=True, min_width=8, ratio=2),
        *([Column("PROGRAM", wrap=True, min_width=6, ratio=1)] if wide else []),
        *([Column("OPTIMIZER")] if wide else []),
        Column("STATUS"),
        *([Column("CREATED")] if wide else []),
        *([Column("TRIALS", justify="right")] if medium else []),
        Column("BEST", justify="right"),
        Column("ON"),
        *([Column("VERDICT")] if medium else []),
    ]
    rows = []
    for s in summaries:
        row: list[Any] = [s.id, s.name, *([s.program, s.optimizer or "-"] if wide else [])]
        row += [s.status.value, *([s.created_at.strftime("%Y-%m-%d %H:%M")] if wide else [])]
        best = "" if s.best_score is None else format_score(s.best_score)
        on = s.score_scope.label.replace(" ", "") if s.score_scope else ""
        count = [s.trial_count] if medium else []
        verdict = [s.verdict.value if s.verdict else "-"] if medium else []
        rows.append([*row, *count, best, on, *verdict])
    return render(rows, columns, width=width)


def trials_table(experiment: Experiment, *, width: int) -> str:
    """The trials of ``experiment``: row and candidate numbers, score with its scope."""
    wide = width >= 110
    columns = [
        Column("#", justify="right"),
        Column("CAND", justify="right"),
        Column("NAME", wrap=True, min_width=10, ratio=1),
        Column("STATUS"),
        Column("SCORE", justify="right"),
        Column("SCOPE", min_width=5),
        Column("N", justify="right"),
        Column("EVENTS", justify="right"),
        Column("TIME", justify="right"),
        *([Column("ID")] if wide else []),
    ]
    rows = []
    for t in sorted(experiment.trials, key=lambda t: t.index):
        scope = score_scope_of(t)
        number = candidate_number(t)
        duration = "" if t.duration_ms is None else _duration(t.duration_ms)
        rows.append(
            [t.index, "" if number is None else f"c{number}", t.name, t.status.value,
             format_score(t.score) if t.score is not None else "", scope.name or "",
             "" if scope.n is None else scope.n, len(t.events), duration,
             *([t.id] if wide else [])]
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
        ("best score", format_score(e.best_score) if e.best_score is not None else ""),
        ("best trial", f"#{best.index} {best.name} ({best.id})" if best is not None else ""),
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
