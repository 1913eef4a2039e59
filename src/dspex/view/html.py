"""Self-contained interactive HTML for trials and experiments.

One renderer serves notebooks and the web UI: inline CSS and JS, no network assets,
and everything still readable with JS off (LM calls and long texts are ``<details>``
elements; filters and the search box appear only when the script runs). Every string
from data goes through Jinja2's autoescape or :func:`markupsafe.escape`::

    >>> json_for_script({"text": "</script><b>"})
    '{"text": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e"}'
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import markupsafe
from markupsafe import Markup, escape

from dspex.formatting import format_score
from dspex.model import EventKind, Experiment, Trial
from dspex.model.outcomes import OUTCOMES
from dspex.model.payloads import payload_of
from dspex.redact import redact
from dspex.view.entries import format_ms
from dspex.view.labels import full_label, scored, short_label, trial_label
from dspex.view.overview import LineageNode, Overview, build_overview
from dspex.view.pareto import pareto_front
from dspex.view.plot import score_plot
from dspex.view.progress import progress_of
from dspex.view.retrievals import embedding_summary, rag_stats, retrieval_view
from dspex.view.runs import segments
from dspex.view.text import _stats_lines, best_against_baseline, rag_lines
from dspex.view.timeline import (
    Change,
    Entry,
    Timeline,
    build_timeline,
    short_json,
)
from dspex.view.verdict import no_verdict_reason, verdict_fields, verdict_line
from dspex.view.waterfall import timeline_waterfall
from dspex.view.why import mentions, why_of

__all__ = [
    "FOLD_CHARS",
    "Pager",
    "experiment_html",
    "json_for_script",
    "timeline_html",
    "timeline_pages",
    "trial_html",
    "window_html",
    "verdict_html",
]

FOLD_CHARS = 600
"""Texts longer than this (or of more than FOLD_LINES lines) fold behind "show all"."""
FOLD_LINES = 12
OPEN_BLOCKS = 40
"""Blocks beyond this many start closed, so a long trial opens quickly."""

TrialUrl = Callable[[Trial], str]
CompareUrl = Callable[[Trial, Trial], str]


@dataclass(frozen=True)
class Pager:
    """Which slice of a long timeline a page shows, with links to its neighbours."""

    first: int
    last: int
    total: int
    prev_url: str | None = None
    next_url: str | None = None
    matching: int | None = None
    """Of a long trial's page (read alone) under filters: how many of its events match."""


def json_for_script(value: Any) -> str:
    """JSON that is safe inside ``<script>``: ``<``, ``>`` and ``&`` become ``\\u003c`` etc."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _static(name: str) -> Markup:
    # Our own CSS/JS shipped with the package: trusted markup, never data.
    return Markup(
        resources.files("dspex.view").joinpath("static").joinpath(name).read_text("utf-8")
    )


@cache
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("dspex.view", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=False,
    )
    env.globals.update(
        clock=_clock,
        lm_summary=_lm_summary,
        retrieval=lambda entry: retrieval_view(entry.event),
        preview=_preview,
        diff_ops=diff_ops,
        ms=lambda v: format_ms(v) if v is not None else "",
        score=format_score,
        label=trial_label,
        scored=scored,
        full_label=full_label,
        short_label=short_label,
        compact=lambda v: short_json(redact(v), 160),
        duration=_duration,
        pretty=lambda v: json.dumps(redact(v), indent=2, ensure_ascii=False, default=str),
    )
    return env


def _duration(seconds: float) -> str:
    """``8.9 s``, ``2 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _clock(entry: Entry) -> str:
    ts = entry.event.timestamp
    return ts.strftime("%H:%M:%S.") + f"{ts.microsecond // 1000:03d}"


def _lm_summary(entry: Entry) -> str:
    p = payload_of(entry.event, EventKind.LM_CALL)
    if p is None:
        return embedding_summary(entry.event)
    usage = p["usage"] if isinstance(p["usage"], dict) else {}
    parts = [str(p["model"] or "")]
    if usage:
        parts.append(f"{usage.get('total_tokens', 0)} tokens")
    if isinstance(p["latency_ms"], int | float):
        parts.append(format_ms(p["latency_ms"]))
    if p["cache_hit"]:
        parts.append("cached")
    return " · ".join(x for x in parts if x)


def _preview(text: str) -> str:
    head = "\n".join(text.splitlines()[:FOLD_LINES])[:FOLD_CHARS]
    return head + " …"


def diff_ops(change: Change) -> list[tuple[str, str]]:
    """Line diff of one change as (op, line) with op in ``' '``, ``'-'``, ``'+'``."""
    before, after = change.before, change.after
    if not isinstance(before, str) or not isinstance(after, str):
        before = _lines_of(before)
        after = _lines_of(after)
    ops = []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith(("+ ", "- ", "  ")):
            ops.append((line[0], line[2:]))
    return ops


def _lines_of(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(json.dumps(v, ensure_ascii=False, default=str) for v in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def timeline_html(
    timeline: Timeline,
    *,
    trial_url: TrialUrl | None = None,
    offset: int = 0,
    limit: int | None = None,
    page_url: Callable[[int], str] | None = None,
    experiment: Experiment | None = None,
) -> Markup:
    """HTML of a trial's page: why the trial exists and what became of it (its decisions,
    outcome and, for the returned candidate, why it was returned; see
    :mod:`dspex.view.why`), the changes against its parent, then where the time went and
    the timeline; ``limit`` shows only events ``offset..offset+limit``. ``experiment``
    (the trial's) names the candidates its decisions speak of, as links with
    ``trial_url``."""
    whole = _WholeTrial(timeline, experiment, trial_url)
    return _timeline_page(whole, trial_url, offset, limit, page_url)


def timeline_pages(
    timeline: Timeline,
    offsets: Iterable[int],
    *,
    limit: int,
    trial_url: TrialUrl | None = None,
    page_url: Callable[[int], str] | None = None,
    experiment: Experiment | None = None,
) -> dict[int, Markup]:
    """Several pages of one timeline (as :func:`timeline_html` renders each), what covers
    the whole trial (waterfall, counts, retrieval summary, the why) worked out once."""
    whole = _WholeTrial(timeline, experiment, trial_url)
    return {offset: _timeline_page(whole, trial_url, offset, limit, page_url) for offset in offsets}


def window_html(
    timeline: Timeline,
    *,
    limit: int,
    trial_url: TrialUrl | None = None,
    page_url: Callable[[int], str] | None = None,
    experiment: Experiment | None = None,
    filtered: bool = False,
) -> Markup:
    """The trial page of a timeline that holds one page of a long trial's events
    (``timeline.window``, see :mod:`dspex.view.window`): those events, with links to the
    ``limit`` events before and after them (``page_url(offset)``; no links without it, as
    in a notebook), and a note of what the page covers and how to see more.
    ``filtered``: the timeline was filtered after it was read (the pager says how many of
    the page's events match)."""
    window = timeline.window
    if window is None:
        raise ValueError("window_html needs a timeline of one window of a trial")
    pager = Pager(
        first=window.first,
        last=window.last,
        total=window.total,
        prev_url=page_url(max(window.offset - limit, 0))
        if page_url and window.offset > 0
        else None,
        next_url=page_url(window.last) if page_url and window.last < window.total else None,
        matching=timeline.event_count if filtered else None,
    )
    whole = _WholeTrial(timeline, experiment, trial_url)
    return _timeline_page(whole, trial_url, 0, None, page_url, pager=pager)


class _WholeTrial:
    """A timeline with the parts every page of it shows computed once."""

    def __init__(
        self,
        timeline: Timeline,
        experiment: Experiment | None = None,
        trial_url: TrialUrl | None = None,
    ) -> None:
        self.timeline = timeline
        self.counted = _Counted(timeline)
        self.waterfall = timeline_waterfall(timeline)
        # a window's retrievals are its page's only: not shown as the trial's
        windowed = timeline.window is not None
        self.rag = [] if windowed else rag_lines(rag_stats(timeline.trial.events))
        self.why = why_of(timeline.trial, experiment)
        self.linked = _mention_linker(experiment, trial_url)
        returned = self.why.returned
        compiled = None
        if returned is not None and returned.compile_trial_id and experiment is not None:
            compiled = next(
                (t for t in experiment.trials if t.id == returned.compile_trial_id), None
            )
        self.compile_href = trial_url(compiled) if compiled is not None and trial_url else ""


class _Counted:
    """``timeline`` with its event, LM call and cache hit counts counted once."""

    def __init__(self, timeline: Timeline) -> None:
        self._timeline = timeline
        window = timeline.window
        if window is not None:  # one page of a long trial: its counts from the summary
            self.event_count = window.total
            self.lm_call_count = window.lm_calls
            self.cache_hit_count = window.cache_hits
            return
        self.event_count = timeline.event_count
        self.lm_call_count = timeline.lm_call_count
        self.cache_hit_count = timeline.cache_hit_count

    def __getattr__(self, name: str) -> Any:
        return getattr(self._timeline, name)


def _timeline_page(
    whole: _WholeTrial,
    trial_url: TrialUrl | None,
    offset: int,
    limit: int | None,
    page_url: Callable[[int], str] | None,
    *,
    pager: Pager | None = None,
) -> Markup:
    timeline = whole.timeline
    if pager is None:
        blocks, pager = _page(timeline, offset, limit, page_url)
    else:  # a window: the timeline holds exactly the page's events
        blocks = list(timeline.blocks)
    html = (
        _environment()
        .get_template("trial.html")
        .render(
            tl=whole.counted,
            trial=timeline.trial,
            segments=segments(blocks),
            wf=whole.waterfall,
            rag=whole.rag,
            pager=pager,
            window=timeline.window,
            trial_url=trial_url,
            why=whole.why,
            verdict_ids={d.event_id for d in whole.why.decisions if d.verdict},
            linked=whole.linked,
            compile_href=whole.compile_href,
            open_blocks=OPEN_BLOCKS,
            fold_chars=FOLD_CHARS,
            fold_lines=FOLD_LINES,
            css=_static("view.css"),
            js=_static("view.js"),
            data=Markup(json_for_script(_trial_data(whole.counted))),
        )
    )
    return Markup(html)


def _mention_linker(
    experiment: Experiment | None, trial_url: TrialUrl | None
) -> Callable[[str], Markup]:
    """Text with each "candidate 8" / "Trial 12" it names linked to that trial's page."""

    def linked(text: str) -> Markup:
        if trial_url is None:
            return escape(text)
        parts = [
            escape(piece)
            if trial is None
            else Markup('<a href="{}">{}</a>').format(trial_url(trial), piece)
            for piece, trial in mentions(text, experiment)
        ]
        return Markup("").join(parts)

    return linked


def _trial_data(timeline: Timeline | _Counted) -> dict[str, Any]:
    trial = timeline.trial
    return {
        "view": "trial",
        "experiment": trial.experiment_id,
        "trial": trial.id,
        "title": timeline.title,
        "events": timeline.event_count,
        "lm_calls": timeline.lm_call_count,
    }


def _page(
    timeline: Timeline, offset: int, limit: int | None, page_url: Callable[[int], str] | None
) -> tuple[list[Any], Pager | None]:
    total = timeline.event_count
    if limit is None or total <= limit and offset == 0:
        return list(timeline.blocks), None
    from dataclasses import replace

    offset = max(0, min(offset, max(total - 1, 0)))
    end = min(offset + limit, total)
    blocks, position = [], 0
    for block in timeline.blocks:
        size = len(block.entries)
        lo, hi = max(offset - position, 0), min(end - position, size)
        if lo < hi:
            blocks.append(replace(block, entries=block.entries[lo:hi]))
        position += size
    url = page_url or (lambda start: f"?offset={start}")
    pager = Pager(
        first=offset + 1 if total else 0,
        last=end,
        total=total,
        prev_url=url(max(offset - limit, 0)) if offset > 0 else None,
        next_url=url(end) if end < total else None,
    )
    return blocks, pager


def trial_html(
    experiment: Experiment, trial: Trial | str, *, trial_url: TrialUrl | None = None
) -> Markup:
    """The trial view of ``trial`` (a Trial or an id of one of ``experiment``'s trials)."""
    if isinstance(trial, str):
        trial = experiment.trial(trial)
    return timeline_html(
        build_timeline(trial, experiment), trial_url=trial_url, experiment=experiment
    )


TRIAL_COLUMNS = (
    ("#", "num", "num"),
    ("trial", "text", ""),
    ("role", "text", ""),
    ("strategy", "text", ""),
    ("outcome", "text", ""),
    ("score", "num", "num"),
    ("scope", "text", ""),
    ("n", "num", "num"),
    ("parents", "", ""),
    ("LM calls", "num", "num"),
    ("tokens", "num", "num"),
    ("errors", "num", "num"),
    ("duration", "num", "num"),
    ("status", "text", ""),
)
"""The trial table's columns: header, sort kind ("" = not sortable), CSS class."""


def _linker(trial_url: TrialUrl | None) -> Callable[[Trial, str], Markup]:
    anchor = _anchor(trial_url)
    return lambda trial, text: Markup(anchor(trial, text))


def _anchor(trial_url: TrialUrl | None) -> Callable[[Trial, str], str]:
    """:func:`_linker`'s link as a plain ``str`` of markup, for the pieces of the tables
    joined in Python (wrapped in ``Markup`` once, as a whole)."""
    # Concatenation, not Markup.format: a page of 2,000 trials makes thousands of links.
    if trial_url is None:
        return lambda trial, text: _text(text)
    return lambda trial, text: '<a href="' + _text(trial_url(trial)) + '">' + _text(text) + "</a>"


def verdict_html(
    experiment: Experiment,
    *,
    trial_url: TrialUrl | None = None,
    compare_url: CompareUrl | None = None,
) -> Markup:
    """The hypothesis verdict fragment (``templates/_verdict.html``), or why there is none.

    Any page can include it; ``trial_url`` links the two trials and ``compare_url`` adds a
    link to them side by side. Every string is escaped.
    """
    hypothesis = experiment.hypothesis
    verdict = hypothesis.verdict if hypothesis is not None else None
    trials = {t.id: t for t in experiment.trials}
    baseline = trials.get(verdict.baseline_trial_id) if verdict else None
    final = trials.get(verdict.final_trial_id) if verdict else None
    html = (
        _environment()
        .get_template("_verdict.html")
        .render(
            verdict=verdict,
            line=verdict_line(verdict) if verdict else "",
            fields=verdict_fields(verdict) if verdict else [],
            reason="" if verdict else no_verdict_reason(experiment),
            baseline=baseline,
            final=final,
            link=_linker(trial_url),
            compare_href=compare_url(baseline, final) if compare_url and baseline and final else "",
        )
    )
    return Markup(html)


def experiment_html(
    experiment: Experiment,
    *,
    trial_url: TrialUrl | None = None,
    compare_url: CompareUrl | None = None,
    live_url: str | None = None,
    live_every: float = 2.0,
) -> Markup:
    """The experiment view: progress, design and verdict, statistics, score plot, lineage,
    trials, best.

    ``trial_url`` links trials (and the plot's points); ``compare_url`` links the best
    trial and the baseline side by side. ``live_url`` (the web UI, for a running
    experiment) is polled every ``live_every`` seconds; the page then reloads the sections
    that changed.
    """
    overview = build_overview(experiment)
    best, baseline = overview.best, overview.baseline
    link = _linker(trial_url)
    anchor = _anchor(trial_url)
    compare_href = ""
    if compare_url and best and baseline and best.id != baseline.id:
        compare_href = compare_url(baseline, best)
    reason = overview.reason
    compiled = (
        experiment.trial(reason.compile_trial_id)
        if reason is not None and reason.compile_trial_id and trial_url is not None
        else None
    )
    html = (
        _environment()
        .get_template("experiment.html")
        .render(
            exp=experiment,
            ov=overview,
            progress=progress_of(experiment),
            live_url=live_url if not experiment.status.is_final else None,
            live_every=int(live_every * 1000),
            stats_rows=_stats_lines(overview),
            plot=score_plot(overview, trial_url=trial_url),
            lineage_html=_lineage_html(overview, anchor),
            pareto=pareto_front(experiment),
            facets=_facets(overview),
            columns=TRIAL_COLUMNS,
            rows_html=_rows_html(overview, anchor),
            link=link,
            verdict=verdict_html(experiment, trial_url=trial_url, compare_url=compare_url),
            best_lines=best_against_baseline(overview),
            compare_href=compare_href,
            compile_href=trial_url(compiled) if compiled is not None and trial_url else "",
            fold_chars=FOLD_CHARS,
            fold_lines=FOLD_LINES,
            css=_static("view.css"),
            js=_static("view.js"),
            data=Markup(
                json_for_script(
                    {"view": "experiment", "experiment": experiment.id, "name": experiment.name}
                )
            ),
        )
    )
    return Markup(html)


_RETURNED = ' <span class="badge returned">returned</span>'


def _rows_html(overview: Overview, link: Callable[[Trial, str], str]) -> Markup:
    """The trial table's rows. Built in Python: the template took ~150 µs a row, and an
    experiment of 2,000 trials has 2,000 of them."""
    best_id = overview.best.id if overview.best else None
    rows = []
    for row in overview.rows:
        t = row.trial
        outcome = row.outcome.value if row.outcome else ""
        outcome_css = _esc(outcome.replace(" ", "-"))
        classes = (
            ("best" if best_id is not None and best_id == t.id else "")
            + (" returned" if row.returned else "")
            + (" outcome-" + outcome_css if row.outcome else "")
        )
        score = "" if t.score is None else _esc(str(t.score))
        badge = (
            '<span class="badge outcome-' + outcome_css + '">' + _esc(outcome) + "</span>"
            if row.outcome
            else "–"
        )
        duration = t.duration_ms
        parents = (
            ", ".join(
                '<span title="' + _esc(full_label(p)) + '">' + link(p, short_label(p)) + "</span>"
                for p in row.parent_trials
            )
            or "–"
        )
        tid = _esc(t.id)
        role, strategy = _esc(row.role or ""), _esc(row.strategy or "")
        scope = _esc(row.scope or "")
        # one f-string a row: joined once (adding its ~60 pieces one by one copied the row
        # again for each)
        rows.append(
            f'<tr class="{_esc(classes)}" id="row-{tid}" data-trial="{tid}"'
            f' data-role="{role}" data-strategy="{strategy}" data-outcome="{_esc(outcome)}"'
            f' data-status="{_esc(t.status.value)}" data-scope="{scope}"'
            f' data-score="{score}"><td class="num">{t.index}</td><td class="name">'
            f"{link(t, t.name or trial_label(t))}"
            f"{_RETURNED if row.returned else ''}"
            f'</td><td>{role or "–"}</td><td>{strategy or "–"}</td><td class="outcome">'
            f"{badge}</td>"
            f'<td class="num" data-value="{score}" title="{_esc(scored(t))}">'
            f"{_esc(format_score(t.score))}</td><td>{scope or '–'}</td>"
            f'<td class="num">{"" if row.n is None else row.n}</td>'
            f'<td class="parents">{parents}</td><td class="num">{row.lm_calls}</td>'
            f'<td class="num">{row.tokens}</td><td class="num">{row.errors}</td>'
            f'<td class="num" data-value="{_esc(str(duration or ""))}">'
            f"{_esc(format_ms(duration)) if duration is not None else ''}</td>"
            f"<td>{_esc(t.status.value)}</td></tr>\n"
        )
    return Markup("".join(rows))


def _replace_escape(text: str) -> str:
    """``text`` escaped exactly as :func:`markupsafe.escape` does, as a plain ``str``."""
    return (
        text.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


def _str_escape() -> Callable[[str], str]:
    """markupsafe's own escaping of a ``str`` (its C routine when built), without the
    ``Markup`` :func:`markupsafe.escape` wraps around it: a sixth of the time of
    :func:`_replace_escape` for the many short strings of a large table. That routine is
    not public: it is used only when it escapes as :func:`markupsafe.escape` does."""
    inner = getattr(markupsafe, "_escape_inner", None)
    probe = "<a title='\"x\"'>&amp;</a> é"
    try:
        same = callable(inner) and inner(probe) == str(escape(probe))
    except (TypeError, ValueError):  # another signature: not the routine this expects
        same = False
    return inner if same else _replace_escape  # type: ignore[return-value]


_esc: Callable[[str], str] = _str_escape()
"""``text`` escaped exactly as :func:`markupsafe.escape` does, as a plain ``str``
(faster for the many short strings of a large table)."""


def _facets(overview: Overview) -> list[tuple[str, list[str]]]:
    """The values each trial-table filter offers (only filters with a choice to make)."""
    facets = [
        ("role", sorted({r.role for r in overview.rows if r.role})),
        ("strategy", sorted({r.strategy for r in overview.rows if r.strategy})),
        ("outcome", [o for o in OUTCOMES if o in {r.outcome for r in overview.rows}]),
        ("status", sorted({r.trial.status.value for r in overview.rows})),
        ("scope", sorted({r.scope for r in overview.rows if r.scope})),
    ]
    # scope always; outcome even with one value ("show me the rejected ones")
    return [
        (axis, values)
        for axis, values in facets
        if len(values) > 1 or axis == "scope" or axis == "outcome" and values
    ]


def _lineage_html(overview: Overview, link: Callable[[Trial, str], str]) -> Markup:
    """Nested lists, each candidate under the one it was derived from; only the branch
    that leads to the best trial is unfolded (``<details>``: it works without script)."""
    if not overview.lineage:
        return Markup("<p>No trials.</p>")
    # plain str pieces of escaped markup, wrapped once (a Markup join escapes each piece)
    parts: list[str] = []
    stack: list[LineageNode] = []  # the open ancestors of the next node
    nodes = overview.lineage
    for i, node in enumerate(nodes):
        while stack and stack[-1].depth >= node.depth:
            parts.append(_close(stack.pop()))
        if i == 0:
            parts.append('<ul class="lineage">')
        has_children = i + 1 < len(nodes) and nodes[i + 1].depth > node.depth
        parts.append(_lineage_item(node, link, has_children))
        stack.append(node)
    while stack:
        parts.append(_close(stack.pop()))
    parts.append("</ul>")
    return Markup("".join(parts))


def _close(node: LineageNode) -> str:
    return "</ul></details></li>" if node.descendants else "</li>"


def _lineage_item(node: LineageNode, link: Callable[[Trial, str], str], has_children: bool) -> str:
    # Built by concatenating escaped pieces (Markup.format costs ~70 µs a call, and the
    # lineage of a 2,000-trial experiment has 2,000 items).
    trial = node.trial
    how = " via <code>" + _text(node.strategy) + "</code>" if node.strategy else ""
    marks = ""
    classes = [
        c for c, on in (("on-best-path", node.on_best_path), ("returned", node.returned)) if on
    ]
    if node.outcome is not None:
        value = _text(node.outcome.value)
        css = _text(node.outcome.value.replace(" ", "-"))
        marks += ' <span class="badge outcome-' + css + '">' + value + "</span>"
        classes.append("outcome-" + node.outcome.value.replace(" ", "-"))
    if node.returned:
        marks += _RETURNED
    text = (
        f'{link(trial, full_label(trial))} <span class="meta">({_text(scored(trial))})</span>'
        f"{how}{marks}"
    )
    best = ' class="' + _text(" ".join(classes)) + '"' if classes else ""
    if not has_children:
        return f"<li{best}>{text}"
    opened = " open" if node.on_best_path else ""
    return (
        f"<li{best}><details{opened}><summary>{text}"
        f' <span class="meta">· {node.descendants} below</span></summary><ul class="lineage">'
    )


def _text(value: object) -> str:
    """``value`` escaped for HTML, as a plain ``str`` (adding a ``str`` to a ``Markup``
    would escape the ``str``: pieces of markup are joined as ``str`` and wrapped once)."""
    if type(value) is str:
        return _esc(value)
    return str(escape(value))  # Markup (kept as it is), numbers, objects with __html__
