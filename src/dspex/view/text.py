"""Plain text renderings of trials and experiments at a fixed width.

    >>> from dspex.view.text import wrap_field
    >>> wrap_field("Strategy", "append_a_rule", width=40, indent=2)
    ['  Strategy: append_a_rule']

:func:`render_trial_text` is what ``dspex demo`` prints at the end of a run.
"""

from __future__ import annotations

import difflib
import json
import math
import textwrap

from dspex.formatting import format_score
from dspex.model import EventKind, Experiment, MetricStats, Trial, scope_of
from dspex.model.outcomes import scored_text
from dspex.model.payloads import payload_of
from dspex.redact import redact
from dspex.view.entries import format_ms
from dspex.view.labels import full_label, scored, trial_label
from dspex.view.overview import LineageNode, Overview, build_overview
from dspex.view.pareto import pareto_front, pareto_lines
from dspex.view.retrievals import RagStats, rag_stats, trials_rag_stats
from dspex.view.safetext import WRAP_BUDGET, fold_lines, terminal_safe
from dspex.view.timeline import Change, Entry, Timeline, build_timeline
from dspex.view.verdict import no_verdict_reason, verdict_line
from dspex.view.why import Why, why_of

__all__ = [
    "best_against_baseline",
    "change_lines",
    "experiment_text",
    "mean_ci",
    "rag_lines",
    "render_trial_text",
    "timeline_text",
    "wrap_field",
]

ABRIDGED_TEXT_LINES = 6


def wrap_field(name: str, value: str, *, width: int, indent: int) -> list[str]:
    """``name: value`` wrapped to ``width``; continuation lines indented under the value."""
    prefix = " " * indent + f"{name}: "
    if len(value) > WRAP_BUDGET:  # too long to wrap word by word in good time: fold
        pieces, _ = fold_lines(value, max(width - len(prefix), 20))
        return [(prefix if i == 0 else " " * len(prefix)) + p for i, p in enumerate(pieces)]
    lines: list[str] = []
    for number, paragraph in enumerate(value.splitlines() or [""]):
        first = prefix if number == 0 else " " * len(prefix)
        lines += textwrap.wrap(
            paragraph,
            width=max(width, len(prefix) + 20),
            initial_indent=first,
            subsequent_indent=" " * len(prefix),
            break_long_words=True,
            replace_whitespace=False,
            drop_whitespace=True,
        ) or [first.rstrip()]
    return lines


def _quote(label: str, text: str, *, width: int, indent: int, max_lines: int | None) -> list[str]:
    pad = " " * indent
    lines = [f"{pad}{label}:"]
    body_width = max(width - indent - 2, 20)
    if len(text) > WRAP_BUDGET:  # too long to wrap word by word in good time: fold
        shown, total = fold_lines(text, body_width, max_lines)
    else:
        body: list[str] = []
        for raw in text.splitlines() or [""]:
            body += textwrap.wrap(
                raw, width=body_width, break_long_words=True, replace_whitespace=False
            ) or [""]
        shown, total = (body if max_lines is None else body[:max_lines]), len(body)
    lines += [f"{pad}> {line}".rstrip() for line in shown]
    if len(shown) < total:
        lines.append(f"{pad}> ... ({total - len(shown)} more lines)")
    return lines


def change_lines(change: Change, *, width: int, indent: int) -> list[str]:
    """A readable diff of one changed variable."""
    pad = " " * indent
    head = f"{pad}{change.predictor}.{change.field}"
    if isinstance(change.before, str) and isinstance(change.after, str):
        diff = difflib.ndiff(change.before.splitlines(), change.after.splitlines())
        lines = [head]
        for line in diff:
            if line.startswith(("+ ", "- ")):
                lines += textwrap.wrap(
                    line,
                    width=width - indent - 2,
                    initial_indent=pad + "  ",
                    subsequent_indent=pad + "    ",
                )
        return lines
    if isinstance(change.before, list) and isinstance(change.after, list):
        lines = [f"{head}: {len(change.before)} -> {len(change.after)} demo(s)"]
        removed = [d for d in change.before if d not in change.after]
        added = [d for d in change.after if d not in change.before]
        for sign, demos in (("-", removed), ("+", added)):
            for demo in demos:
                text = json.dumps(demo, ensure_ascii=False)
                lines += textwrap.wrap(
                    f"{sign} {text}",
                    width=width - indent - 2,
                    initial_indent=pad + "  ",
                    subsequent_indent=pad + "    ",
                )
        return lines
    return [f"{head}: {json.dumps(change.before)} -> {json.dumps(change.after)}"]


def _clock(entry: Entry) -> str:
    ts = entry.event.timestamp
    return ts.strftime("%H:%M:%S.") + f"{ts.microsecond // 1000:03d}"


def _time_bar(timeline: Timeline, width: int) -> list[str]:
    shares = timeline.time_by_source
    if not shares:
        return []
    bar_width = max(width - 2, 10)
    letters = {"orchestration": "O", "execution": "X", "evaluation": "E", "waiting": "."}
    bar = "".join(letters.get(s.label, "?") * round(s.fraction * bar_width) for s in shares)
    legend = " · ".join(
        f"{letters.get(s.label, '?')} {s.label} {s.fraction:.0%} ({format_ms(s.ms)})"
        for s in shares
    )
    lines = [f"[{bar[:bar_width]:<{bar_width}}]"]
    lines += textwrap.wrap("Time: " + legend, width=width)
    modules = list(timeline.time_by_module[:5])
    if modules:
        text = " · ".join(f"{s.label} {s.fraction:.0%}" for s in modules)
        lines += textwrap.wrap("Modules: " + text, width=width)
    return lines


def timeline_text(
    timeline: Timeline,
    *,
    width: int = 100,
    abridged: bool = False,
    max_events: int | None = None,
    why: Why | None = None,
) -> str:
    """The trial's timeline as plain text at ``width`` columns: the why first (``why``:
    its decisions, outcome, why it was returned), the changes, then the time and events."""
    max_lines = ABRIDGED_TEXT_LINES if abridged else None
    lines = _title_lines(timeline, width)
    lines += window_lines(timeline, width)
    lines += why_lines(why, width) if why is not None else []
    lines += _parent_lines(timeline, width)
    lines += _time_bar(timeline, width)
    if abridged:
        timeline = _without_routine(timeline)
    verdicts = frozenset(d.event_id for d in why.decisions if d.verdict) if why else frozenset()
    lines += _blocks_text(
        timeline, width=width, max_lines=max_lines, max_events=max_events, verdicts=verdicts
    )
    lines += _problem_lines(timeline, width=width, max_lines=max_lines)
    return terminal_safe("\n".join(line.rstrip() for line in lines) + "\n")


def window_lines(timeline: Timeline, width: int) -> list[str]:
    """What a view of one window of a long trial covers, and how to see more (nothing
    for a timeline that holds every event)."""
    window = timeline.window
    if window is None:
        return []
    more = [window.more] if window.more else []  # a command: on its own line, unwrapped
    return [*textwrap.wrap(window.said, width=width), *more, "-" * width]


ROUTINE_KINDS = ("adapter_format", "adapter_parse", "module_end")
"""Events an abridged timeline leaves out unless they failed: they repeat what the
surrounding module call and LM call already show."""


def _without_routine(timeline: Timeline) -> Timeline:
    from dataclasses import replace

    blocks = []
    for block in timeline.blocks:
        kept = tuple(e for e in block.entries if e.kind not in ROUTINE_KINDS or e.failed)
        if kept:
            blocks.append(replace(block, entries=kept))
    return replace(timeline, blocks=tuple(blocks))


def why_lines(why: Why, width: int) -> list[str]:
    """The Why section of a trial in text: outcome, why returned, its decisions in order."""
    if why.empty:
        return []
    head = "Why this trial" + (f": {why.outcome.value}" if why.outcome else "")
    lines = [head]
    if why.returned is not None:
        lines += textwrap.wrap(
            f"returned by the compile. Why: {why.returned.line}",
            width=width,
            initial_indent="  ",
            subsequent_indent="    ",
        )
    for said in why.decisions:
        text = said.decision + (f" [{said.strategy}]" if said.strategy else "")
        if said.rationale:
            text += f": {said.rationale}"
        if said.action:
            text += f" -> {_cut(said.action, 300)}"
        mark = "* " if said.verdict else "- "
        for number, line in enumerate(text.splitlines() or [""]):
            lines += textwrap.wrap(
                line,
                width=width,
                initial_indent=("  " + mark) if number == 0 else "      ",
                subsequent_indent="      ",
                break_on_hyphens=False,
            ) or [""]
    if why.more:
        lines.append(f"  ({why.more} more decisions in the timeline below)")
    return lines


def _title_lines(timeline: Timeline, width: int) -> list[str]:
    trial = timeline.trial
    meta = [trial.name] if trial.name else []
    meta += [f"id {trial.id}", f"status {trial.status.value}"]
    if timeline.parent is not None:
        meta.append(f"parent: {trial_label(timeline.parent)}")
    if timeline.strategy:
        meta.append(f"strategy {timeline.strategy}")
    if timeline.window is None:  # a window's retrievals are its page's, not the trial's
        meta += [f"{name} {value}" for name, value in rag_lines(rag_stats(trial.events))]
    return [timeline.title, *wrap_items(meta, width), "=" * width]


def wrap_items(items: list[str], width: int, sep: str = " · ") -> list[str]:
    """``items`` joined by ``sep`` in lines of ``width``, broken between items only (a
    label such as ``parent:`` never ends a line without its value); an item longer
    than a line is wrapped on its own.

    >>> wrap_items(["depth 1 candidate 4", "status ok", "parent: Trial 2"], 31)
    ['depth 1 candidate 4 · status ok', 'parent: Trial 2']
    >>> wrap_items(["depth 1 candidate 4", "status ok", "parent: Trial 2"], 30)
    ['depth 1 candidate 4', 'status ok · parent: Trial 2']
    """
    lines: list[str] = []
    line = ""
    for item in items:
        joined = f"{line}{sep}{item}" if line else item
        if len(joined) <= width:
            line = joined
            continue
        if line:
            lines.append(line)
        pieces = textwrap.wrap(item, width=width) or [""]
        lines += pieces[:-1]
        line = pieces[-1]
    return [*lines, line] if line else lines


NO_VARIABLES = "not recorded (this trial records no variables: it runs its parent as it is)"


def _parent_lines(timeline: Timeline, width: int) -> list[str]:
    if timeline.parent is None:
        return []
    head = f"Changes against parent ({trial_label(timeline.parent)}):"
    if not timeline.diffable:
        return ["", *textwrap.wrap(f"{head} {NO_VARIABLES}", width=width)]
    lines = ["", head]
    for change in timeline.changes:
        lines += change_lines(change, width=width, indent=2)
    return lines if timeline.changes else [*lines, "  (none)"]


def _blocks_text(
    timeline: Timeline,
    *,
    width: int,
    max_lines: int | None,
    max_events: int | None,
    verdicts: frozenset[str] = frozenset(),
) -> list[str]:
    lines: list[str] = []
    limit = timeline.event_count if max_events is None else max_events
    shown = 0
    for block in timeline.blocks:
        if shown >= limit:
            break
        lines += ["", f"── {block.label} " + "─" * max(width - len(block.label) - 4, 0)]
        for name, value in block.header:
            lines += wrap_field(name, value, width=width, indent=0)
        several = len(block.workers) > 1
        for entry in block.entries[: limit - shown]:
            if entry.event.id in verdicts:  # shown once, under "Why this trial"
                pad = " " * (2 + 2 * min(entry.depth, 6))
                lines.append(f"{pad}[{_clock(entry)}] {entry.title}: the verdict, above")
                continue
            lines += _entry_text(entry, width=width, max_lines=max_lines, show_worker=several)
        shown += min(len(block.entries), limit - shown)
    if not timeline.blocks:
        lines += [
            "",
            "(no events were recorded for this trial)"
            if not timeline.trial.events
            else "(no events match these filters)",
        ]
    if shown < timeline.event_count:
        more = timeline.event_count - shown
        trial = timeline.trial
        whole = f"dspex experiments show {trial.experiment_id} --trial {trial.index} --full"
        lines += ["", f"... {more} more events; the whole trial:", f"  {whole}", "  or dspex ui"]
        hidden = timeline.entries[shown:]
        scores = [e for e in hidden if e.event.kind is EventKind.TRIAL_SCORE]
        if scores:  # the outcome is worth printing even when the events are cut short
            lines += wrap_field("Final Score", _score_line(scores[-1]), width=width, indent=0)
    return lines


def _score_line(entry: Entry) -> str:
    p = payload_of(entry.event, EventKind.TRIAL_SCORE)
    assert p is not None
    score = p["score"]
    details = [str(p["metric"])] if p["metric"] else []
    details += [
        f"{name} {value}"
        for name, value in (("n", p["n"]), ("failures", p["failures"]), ("scope", p["scope"]))
        if value is not None
    ]
    text = format_score(float(score)) if isinstance(score, int | float) else "n/a"
    return text + (f" ({', '.join(details)})" if details else "")


def _problem_lines(timeline: Timeline, *, width: int, max_lines: int | None) -> list[str]:
    if not timeline.problems:
        return []
    lines = ["", "── Errors " + "─" * (width - 10)]
    for problem in timeline.problems:
        lines += wrap_field(
            problem.where, f"{problem.type}: {problem.message}", width=width, indent=0
        )
        if problem.traceback:
            lines += _quote(
                "traceback", problem.traceback, width=width, indent=2, max_lines=max_lines
            )
    return lines


def _entry_text(
    entry: Entry, *, width: int, max_lines: int | None, show_worker: bool = False
) -> list[str]:
    indent = 2 + 2 * min(entry.depth, 6)
    mark = f" @{entry.event.worker}" if show_worker else ""
    mark += " [FAILED]" if entry.failed else ""
    lines = [" " * indent + f"[{_clock(entry)}] {entry.title}{mark}"]
    for name, value in entry.fields:
        lines += wrap_field(name, value, width=width, indent=indent + 2)
    for label, text in entry.texts:
        lines += _quote(label, text, width=width, indent=indent + 2, max_lines=max_lines)
    return lines


def render_trial_text(
    experiment: Experiment,
    trial: Trial | str,
    width: int = 100,
    abridged: bool = True,
    max_events: int | None = 60,
) -> str:
    """A trial's timeline as plain text, as ``dspex demo`` prints it.

    ``trial`` is a :class:`~dspex.Trial` or a trial id of ``experiment``; ``abridged``
    folds long texts to a few lines and ``max_events`` stops after that many events.
    """
    if isinstance(trial, str):
        trial = experiment.trial(trial)
    text = timeline_text(
        build_timeline(trial, experiment),
        width=width,
        abridged=abridged,
        max_events=max_events,
        why=why_of(trial, experiment),
    )
    return text


# -- experiment --------------------------------------------------------------------


def _stats_lines(overview: Overview) -> list[tuple[str, str]]:
    stats = overview.stats
    rows: list[tuple[str, str]] = []
    on = f" on {stats.scope.label}" if stats.scope is not None else ""
    for name, metric in stats.metrics.items():
        rows.append((f"{name}, best trial{on}", mean_ci(metric) + _left_out(metric.non_finite)))
    if stats.trial_scores is not None:
        s = stats.trial_scores
        spread = f"{s.n} trials, {format_score(s.min)} to {format_score(s.max)}" if s.n > 1 else ""
        rows.append(
            (
                f"scores{on}",
                (spread or f"1 trial, {format_score(s.mean)}") + _left_out(s.non_finite),
            )
        )
    if stats.latency_ms is not None:
        rows.append(
            (
                "latency",
                f"p50 {format_ms(stats.latency_ms.p50)}, p95 {format_ms(stats.latency_ms.p95)}",
            )
        )
    rows.append(("tokens", f"{stats.total_tokens:,}"))
    hits = sum(row.cache_hits for row in overview.rows)
    if hits:
        calls = sum(row.lm_calls for row in overview.rows)
        rows.append(("LM calls", f"{calls:,} ({cache_hit_text(hits, calls)})"))
    rows.append(("cost", f"${stats.total_cost:.4f}"))
    rows += rag_lines(trials_rag_stats(overview.experiment.trials))
    rows.append(
        (
            "trials / examples / errors",
            f"{stats.trial_count} / {stats.example_count} / {stats.error_count}",
        )
    )
    return rows


def rag_lines(stats: RagStats | None) -> list[tuple[str, str]]:
    """Summary rows of retrievals and embedding calls (none when there were none):
    ``("retrievals", "12 (p50 3.1 ms, p95 9.8 ms)")``,
    ``("embeddings", "13 calls, 36 texts, 1 index build, $0.0000")``."""
    if stats is None:
        return []
    rows = []
    if stats.retrievals:
        timing = ""
        if stats.latency_p50 is not None and stats.latency_p95 is not None:
            timing = f" (p50 {format_ms(stats.latency_p50)}, p95 {format_ms(stats.latency_p95)})"
        failed = f", {stats.failed} failed" if stats.failed else ""
        rows.append(("retrievals", f"{stats.retrievals:,}{timing}{failed}"))
    if stats.embedding_calls:
        parts = [f"{stats.embedding_calls:,} calls", f"{stats.texts_embedded:,} texts"]
        if stats.index_builds:
            parts.append(f"{stats.index_builds} index build{'s' if stats.index_builds > 1 else ''}")
        if stats.embedding_tokens:
            parts.append(f"{stats.embedding_tokens:,} tokens")
        if stats.cache_hits:
            parts.append(f"{stats.cache_hits:,} batches from cache")
        parts.append(f"${stats.embedding_cost:.4f}")
        rows.append(("embeddings", ", ".join(parts)))
    return rows


def cache_hit_text(hits: int, calls: int) -> str:
    """``3 from DSPy's cache, hit rate 43%``.

    >>> cache_hit_text(3, 7)
    "3 from DSPy's cache, hit rate 43%"
    """
    return f"{hits:,} from DSPy's cache, hit rate {hits / calls:.0%}" if calls else ""


def mean_ci(metric: MetricStats) -> str:
    """``mean 0.750 (95% CI 0.409 to 0.929, Wilson score, n=8)``: the method named with it."""
    if metric.ci95_low is None or metric.ci95_high is None:
        return (
            f"mean {metric.mean:.3f} (no interval: {metric.ci_method or 'undefined'}, n={metric.n})"
        )
    method = metric.ci_method or "Student's t"
    return (
        f"mean {metric.mean:.3f} (95% CI {metric.ci95_low:.3f} to {metric.ci95_high:.3f}, "
        f"{method}, n={metric.n})"
    )


def _left_out(non_finite: int) -> str:
    return f"; {non_finite} non-finite (NaN or inf) left out" if non_finite else ""


def _header_lines(overview: Overview) -> list[tuple[str, str]]:
    exp = overview.experiment
    rows = [("id", exp.id), ("status", exp.status.value)]
    if exp.hypothesis is not None:
        h = exp.hypothesis
        rows.append(("hypothesis", f"{h.research_question} [{h.status.value}]"))
        if h.prediction:
            rows.append(("prediction", h.prediction))
        rows.append(("verdict", verdict_line(h.verdict) if h.verdict else no_verdict_reason(exp)))
    program = exp.program.name + (f" ({exp.program.class_path})" if exp.program.class_path else "")
    rows.append(("program", program))
    if exp.optimizer is not None:
        settings = json.dumps(redact(exp.optimizer.settings), ensure_ascii=False)
        rows.append(("optimizer", f"{exp.optimizer.name} {settings}"))
    if exp.tags:
        rows.append(("tags", ", ".join(exp.tags)))
    rows += [("warning", warning) for warning in exp.warnings]
    rows += returned_lines(overview)
    return rows


def returned_lines(overview: Overview) -> list[tuple[str, str]]:
    """The candidate the compile returned, with its scored scope, and why (the
    optimizer's own words), as (name, value) fields."""
    returned, reason = overview.returned, overview.reason
    if returned is None or reason is None:
        return []
    scores = [scored(returned)] + [
        f"{scored(v)} (Trial {v.index})" for v in overview.returned_validations
    ]
    return [
        ("returned", f"{full_label(returned)}: " + "; ".join(scores)),
        ("why returned", reason.line),
    ]


def lineage_line(node: LineageNode) -> str:
    """One lineage node in one line: label, score with its scope, strategy, outcome."""
    how = f" via {node.strategy}" if node.strategy else ""
    marks = (f" [{node.outcome.value}]" if node.outcome else "") + (
        " [returned]" if node.returned else ""
    )
    return f"{trial_label(node.trial)} ({scored(node.trial)}){how}{marks}"


def _score_bar(score: float | None, lowest: float, highest: float, width: int) -> str:
    if score is None or not math.isfinite(score):  # NaN and inf have no bar length
        return ""
    span = highest - lowest
    fraction = 1.0 if span <= 0 else (score - lowest) / span
    return "#" * max(1, round(fraction * width))


def experiment_text(experiment: Experiment, *, width: int = 100) -> str:
    """An experiment's overview as plain text at ``width`` columns."""
    overview = build_overview(experiment)
    lines = [f"Experiment {experiment.name}", "=" * width]
    for name, value in _header_lines(overview):
        lines += wrap_field(name, value, width=width, indent=0)
    lines += ["", "Summary"]
    for name, value in _stats_lines(overview):
        lines += wrap_field(name, value, width=width, indent=2)
    lines += ["", "Trials"]
    lines += _table_text(overview, width)
    lines += ["", "Lineage"]
    for node in overview.lineage:
        lines.append("  " + "  " * node.depth + ("└ " if node.depth else "") + lineage_line(node))
    front = pareto_front(experiment)
    if front is not None:
        lines += ["", *pareto_lines(front)]
    lines += _best_lines(overview, width)
    return terminal_safe("\n".join(line.rstrip() for line in lines) + "\n")


def _table_text(overview: Overview, width: int) -> list[str]:
    scores = [s for s in (r.trial.score for r in overview.rows) if s is not None and _finite(s)]
    low, high = (min(0.0, *scores), max(scores)) if scores else (0.0, 1.0)
    head = (
        f"  {'#':>3}  {'name':<22} {'score':>7} {'scope':<9} {'n':>3}  {'parents':<7} "
        f"{'strategy':<13} {'outcome':<9} {'LM':>4} {'err':>3}  "
    )
    bar_width = max(width - len(head), 5)
    lines = [head + "plot"]
    notes = []
    if overview.best is not None:
        notes.append("* best on the reference set")
    if overview.returned is not None:
        notes.append("R the candidate the compile returned")
    for row in overview.rows:
        t = row.trial
        best = "*" if overview.best is not None and t.id == overview.best.id else " "
        best = ("R" if row.returned else " ") + best
        outcome = row.outcome.value if row.outcome else "-"
        parents = ",".join(str(p) for p in row.parents) or "-"
        n = "" if row.n is None else str(row.n)
        lines.append(
            f"{best}{t.index:>3}  {_cut(t.name or '', 22):<22} {format_score(t.score):>7} "
            f"{_cut(row.scope or '-', 9):<9} {n:>3}  {_cut(parents, 7):<7} "
            f"{(row.strategy or '-')[:13]:<13} {outcome:<9} {row.lm_calls:>4} {row.errors:>3}  "
            + _score_bar(t.score, low, high, bar_width)
        )
    if notes:
        lines.append("  (" + "; ".join(notes) + ")")
    return lines


def _finite(score: float | None) -> bool:
    return score is not None and math.isfinite(score)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _best_lines(overview: Overview, width: int) -> list[str]:
    lines = ["", "Best against baseline"]
    for line in best_against_baseline(overview):
        lines += textwrap.wrap(line, width=width, initial_indent="  ", subsequent_indent="    ")
    for change in overview.best_changes:
        lines += change_lines(change, width=width, indent=2)
    return lines


def best_against_baseline(overview: Overview) -> list[str]:
    """The best trial against the baseline on one example set, or why there is no such pair."""
    best, baseline, scope = overview.best, overview.baseline, overview.scope
    if best is None or scope is None:
        return ["no trial has a score over recorded examples: nothing to rank"]
    lines = [f"best: {trial_label(best)} ({scored_text(best.score, scope.name, scope.n)})"]
    if baseline is None:
        root = overview.root
        elsewhere = ""
        if root is not None and root.id != best.id:
            other = scope_of(root)
            where = f"on {other.label}" if other else "without recorded examples"
            elsewhere = f"; the baseline {trial_label(root)} was scored {where}"
        return [lines[0] + f": no baseline was scored on this example set{elsewhere}"]
    if baseline.id == best.id:
        return [lines[0] + ": the baseline itself; no later trial on this set scored higher"]
    lines[0] += f", against the baseline {trial_label(baseline)} ({scored(baseline)})"
    if overview.comparison is not None:
        lines.append("difference: " + overview.comparison.describe())
    return lines
