"""A study, for people: in a notebook or the web UI (HTML), and in a terminal (text).

The page shows the hypothesis and its verdict, each arm across its seeds (scores,
interval, baseline, LM calls, tokens, cost, time), the comparisons between arms, the
arms x seeds matrix (each cell links to its experiment), each arm's scores as a strip
plot, every cell's best-so-far curve overlaid, and score against cost. It reads the
study's record only (its cells carry what their experiments measured). Every string
from the record (names, causes, hypotheses) is escaped.

    >>> from dspex.model.study import StudyRecord
    >>> "&lt;b&gt;" in study_html(StudyRecord(name="s", hypothesis="<b>"))
    True
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from dspex.analysis.studies import ArmSummary, arm_summaries, study_comparisons
from dspex.formatting import format_p
from dspex.model.study import ArmComparison, CellStatus, StudyCell, StudyRecord, StudyStatus
from dspex.view.plot import PALETTE
from dspex.view.safetext import terminal_safe as safe_text

__all__ = ["StudyPage", "study_html", "study_page", "study_text"]

UrlOf = Callable[[str], str]

WIDTH = 640
_ROW = 26
_LEFT = 110
_PAD = 12


@dataclass(frozen=True)
class StudyPage:
    """What the study views show, computed once from the record."""

    record: StudyRecord
    arms: list[ArmSummary]
    comparisons: list[ArmComparison]

    @property
    def colors(self) -> dict[str, str]:
        return {a.arm: PALETTE[i % len(PALETTE)] for i, a in enumerate(self.arms)}

    @property
    def counts(self) -> dict[str, int]:
        found = {status.value: 0 for status in CellStatus}
        for cell in self.record.cells:
            found[cell.status.value] += 1
        return found


def study_page(record: StudyRecord) -> StudyPage:
    return StudyPage(record, arm_summaries(record), study_comparisons(record))


# -- text ---------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-" if value is None else str(value)
    return f"{value:.{digits}f}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [list(headers), *rows]:
        text = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        lines.append(text[:width])
    return lines


def study_text(record: StudyRecord, width: int = 100) -> str:
    """``dspex study show``: the study in a terminal, fitted to ``width`` columns."""
    page = study_page(record)
    counts = page.counts
    head = [
        f"Study {record.name}: {record.status.value}",
        f"Hypothesis: {record.hypothesis}",
        f"Cells: {len(record.cells)} ({counts['sealed']} sealed, {counts['running']} running, "
        f"{counts['failed']} failed, {counts['pending'] + counts['interrupted']} to run)",
    ]
    if record.evaluation is not None:
        head.append(f"Evaluated on: {record.evaluation.label}, metric {record.evaluation.metric}")
    verdict = record.verdict
    if verdict is not None:
        head.append(f"Verdict: {verdict.outcome.value}. {verdict.reason}")
    elif record.control and record.treatment:
        head.append("Verdict: none yet (no sealed cell in one of the compared arms)")
    head += [f"Note: {warning}" for warning in record.warnings]
    out = [
        wrapped
        for line in head
        for wrapped in textwrap.wrap(safe_text(line), width, subsequent_indent="  ")
    ]
    out += ["", "Arms (score across seeds)"]
    rows = [
        [
            a.arm,
            f"{a.seeds}/{a.cells}",
            _num(a.mean),
            _num(a.sd),
            f"{_num(a.min)}..{_num(a.max)}" if a.min is not None else "-",
            f"{_num(a.ci_low)}..{_num(a.ci_high)}" if a.ci_low is not None else "-",
            _num(a.baseline),
            str(a.lm_calls),
            _money(a.cost),
            f"{a.wall_s:.1f}s",
        ]
        for a in page.arms
    ]
    headers = [
        "arm",
        "seeds",
        "mean",
        "sd",
        "min..max",
        "95% CI",
        "baseline",
        "LM calls",
        "cost",
        "time",
    ]
    out += _table(headers, [[safe_text(c) for c in r] for r in rows], width)
    if page.arms and any(a.ci_low is not None for a in page.arms):
        out.append("CI: two-way bootstrap over seeds and examples")
    if page.comparisons:
        out += ["", "Comparisons (treatment vs control, across seeds)"]
        rows = [
            [
                f"{c.treatment} vs {c.control}",
                f"{c.effect:+.3f}",
                f"{_num(c.ci_low)}..{_num(c.ci_high)}" if c.ci_low is not None else "-",
                format_p(c.p_value),
                format_p(c.p_adjusted),
                _num(c.effect_size, 2),
                _num(c.p_superiority, 2),
            ]
            for c in page.comparisons
        ]
        headers = ["pair", "effect", "95% CI", "p", "p (Holm)", "g", "P(wins)"]
        out += _table(headers, [[safe_text(c) for c in r] for r in rows], width)
    out += ["", "Cells (arm x seed: score, or status)"]
    seeds = list(record.seeds)
    rows = []
    for arm in record.arms:
        row = [arm.name]
        for seed in seeds:
            row.append(_cell_text(_find(record, arm.name, seed)))
        rows.append(row)
    out += _table(["arm", *map(str, seeds)], [[safe_text(c) for c in r] for r in rows], width)
    problems = [
        (c, a) for c in record.cells for a in c.attempts if a.cause and a.outcome.value != "sealed"
    ]
    if problems:
        out += ["", "Attempts that did not seal"]
        for cell, attempt in problems[-20:]:
            out.append(
                safe_text(
                    f"  {cell.arm} seed {cell.seed} attempt {attempt.number} "
                    f"({attempt.outcome.value}): {attempt.cause}"
                )[:width]
            )
    return "\n".join(out) + "\n"


def _find(record: StudyRecord, arm: str, seed: int) -> StudyCell | None:
    for cell in record.cells:
        if cell.key == (arm, seed):
            return cell
    return None


def _cell_text(cell: StudyCell | None) -> str:
    if cell is None:
        return ""
    if cell.status is CellStatus.SEALED and cell.result is not None:
        text = _num(cell.result.score)
    else:
        text = cell.status.value
    return text + (f" ({len(cell.attempts)} tries)" if len(cell.attempts) > 1 else "")


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
.dspex-study{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,sans-serif;
font-size:13px;line-height:1.4;max-width:1200px}
.dspex-study h2{font-size:18px;margin:4px 0}.dspex-study h3{font-size:15px;margin:12px 0 4px}
.dspex-study .meta{color:#57606a}
.dspex-study table{border-collapse:collapse}
.dspex-study th,.dspex-study td{border-bottom:1px solid rgba(127,127,127,.25);padding:2px 8px;
text-align:left}
.dspex-study td.num,.dspex-study th.num{text-align:right;font-variant-numeric:tabular-nums}
.dspex-study .verdict{border-left:4px solid #57606a;padding:2px 8px;margin:6px 0}
.dspex-study .verdict.validated{border-color:#1a7f37}
.dspex-study .verdict.rejected{border-color:#cf222e}
.dspex-study .badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:11px;
border:1px solid #57606a}
.dspex-study td.cell-sealed{background:rgba(26,127,55,.08)}
.dspex-study td.cell-failed{background:rgba(207,34,46,.10)}
.dspex-study td.cell-running{background:rgba(9,105,218,.10)}
.dspex-study td.cell-interrupted,.dspex-study td.cell-pending{color:#57606a}
.dspex-study svg text{font-size:11px;fill:currentColor}
.dspex-study svg .axis{stroke:rgba(127,127,127,.5)}
.dspex-study .plots{display:flex;flex-wrap:wrap;gap:12px}
"""

_LIVE_JS = """
(function(){var root=document.currentScript.closest('[data-live-url]');if(!root)return;
var url=root.dataset.liveUrl,rev=root.dataset.liveVersion,every=+root.dataset.liveEvery||2000;
function tick(){fetch(url,{credentials:'same-origin'}).then(function(r){return r.json()})
.then(function(p){if(String(p.revision)!==rev){location.reload();return}
if(p.live)setTimeout(tick,every)}).catch(function(){setTimeout(tick,every*2)})}
setTimeout(tick,every)})();
"""


def study_html(
    record: StudyRecord,
    *,
    experiment_url: UrlOf | None = None,
    live_url: str | None = None,
    live_every: float = 2.0,
) -> Markup:
    """The study as self-contained HTML (notebooks, the web UI's study page).

    ``experiment_url(id)`` links each cell to its experiment; ``live_url`` (the page of a
    running study) makes the page reload itself when the study's record changes.
    """
    page = study_page(record)
    live = live_url is not None and record.status is StudyStatus.RUNNING
    attributes = Markup("")
    if live:
        attributes = Markup(
            ' data-live-url="{}" data-live-version="{}" data-live-every="{}"'
        ).format(live_url, record.revision, int(live_every * 1000))
    parts = [
        Markup('<div class="dspex-study"{}><style>{}</style>').format(attributes, Markup(_CSS)),
        _header(page, live),
        _arms_html(page),
        _comparisons_html(page),
        _matrix_html(page, experiment_url),
        Markup('<h3>Plots</h3><div class="plots">'),
        _strip_plot(page, experiment_url),
        _curves_plot(page),
        _cost_plot(page, experiment_url),
        Markup("</div>"),
        _attempts_html(page),
    ]
    if live:
        parts.append(Markup("<script>{}</script>").format(Markup(_LIVE_JS)))
    parts.append(Markup("</div>"))
    return Markup("").join(parts)


def _header(page: StudyPage, live: bool) -> Markup:
    record = page.record
    counts = page.counts
    html = Markup("<h2>Study {}</h2>").format(record.name)
    html += Markup(
        '<p class="meta"><span class="badge">{}{}</span> · {} cells: {} sealed, {} '
        "running, {} failed, {} to run · updated {} UTC</p>"
    ).format(
        record.status.value,
        " (live)" if live else "",
        len(record.cells),
        counts["sealed"],
        counts["running"],
        counts["failed"],
        counts["pending"] + counts["interrupted"],
        record.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
    )
    html += Markup("<p><b>Hypothesis</b>: {}</p>").format(record.hypothesis or "(none)")
    if record.evaluation is not None:
        html += Markup('<p class="meta">Every cell evaluated on {} ({}), metric {}</p>').format(
            record.evaluation.label, record.evaluation.fingerprint, record.evaluation.metric
        )
    verdict = record.verdict
    if verdict is not None:
        html += Markup('<p class="verdict {}"><b>{}</b> at alpha {}: {}</p>').format(
            verdict.outcome.value, verdict.outcome.value, f"{verdict.alpha:g}", verdict.reason
        )
    elif record.control and record.treatment:
        html += Markup(
            '<p class="verdict">No verdict yet: {} and {} need sealed cells.</p>'
        ).format(record.treatment, record.control)
    for warning in record.warnings:
        html += Markup('<p class="meta">Note: {}</p>').format(warning)
    return html


def _arms_html(page: StudyPage) -> Markup:
    if not page.arms:
        return Markup("")
    seeding = {arm.name: arm for arm in page.record.arms}
    rows = Markup("")
    for a in page.arms:
        arm = seeding[a.arm]
        ci = f"{_num(a.ci_low)} to {_num(a.ci_high)}" if a.ci_low is not None else "-"
        rows += Markup(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class=num>{}/{}</td>"
            "<td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td>"
            "<td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td>"
            "</tr>"
        ).format(
            a.arm,
            arm.optimizer,
            arm.seeding.value + (" (replicates)" if arm.replicates else ""),
            a.seeds,
            a.cells,
            _num(a.mean),
            _num(a.sd),
            f"{_num(a.min)} to {_num(a.max)}" if a.min is not None else "-",
            ci,
            _num(a.baseline),
            a.lm_calls,
            a.tokens,
            _money(a.cost) + f" · {a.wall_s:.1f} s",
        )
    return Markup(
        "<h3>Arms</h3><table><thead><tr><th>arm</th><th>optimizer</th><th>seeding</th>"
        "<th class=num>sealed</th><th class=num>mean</th><th class=num>sd</th>"
        "<th class=num>min to max</th><th class=num>95% CI</th><th class=num>baseline</th>"
        "<th class=num>LM calls</th><th class=num>tokens</th><th class=num>cost · time</th>"
        '</tr></thead><tbody>{}</tbody></table><p class="meta">Scores are the optimized '
        "program's on the evaluation set, one per seed; the interval is a two-way bootstrap "
        "over seeds and examples.</p>"
    ).format(rows)


def _comparisons_html(page: StudyPage) -> Markup:
    if not page.comparisons:
        return Markup("")
    rows = Markup("")
    for c in page.comparisons:
        ci = f"{c.ci_low:+.3f} to {c.ci_high:+.3f}" if c.ci_low is not None else "-"
        rows += Markup(
            "<tr><td>{} vs {}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td>"
            "<td class=num>{}</td><td class=num>{}</td><td class=num>{}</td>"
            "<td class=num>{} / {}</td></tr>"
        ).format(
            c.treatment,
            c.control,
            f"{c.effect:+.3f}",
            ci,
            format_p(c.p_value),
            format_p(c.p_adjusted),
            _num(c.effect_size, 2),
            _num(c.p_superiority, 2),
            c.treatment_seeds,
            c.control_seeds,
        )
    correction = "Holm" if len(page.comparisons) > 1 else "none needed"
    return Markup(
        "<h3>Comparisons</h3><table><thead><tr><th>treatment vs control</th>"
        "<th class=num>effect</th><th class=num>95% CI</th><th class=num>p</th>"
        "<th class=num>p adjusted ({})</th><th class=num>Hedges' g</th>"
        "<th class=num>P(treatment wins on a fresh seed)</th><th class=num>seeds</th></tr>"
        '</thead><tbody>{}</tbody></table><p class="meta">Permutation test over seeds; the '
        "examples are shared, so every difference is over the same questions.</p>"
    ).format(correction, rows)


def _matrix_html(page: StudyPage, experiment_url: UrlOf | None) -> Markup:
    record = page.record
    if not record.cells:
        return Markup("")
    head = Markup("").join(Markup("<th class=num>seed {}</th>").format(s) for s in record.seeds)
    rows = Markup("")
    for arm in record.arms:
        cells = Markup("")
        for seed in record.seeds:
            cells += _matrix_cell(_find(record, arm.name, seed), experiment_url)
        rows += Markup("<tr><th>{}</th>{}</tr>").format(arm.name, cells)
    return Markup(
        "<h3>Cells</h3><table class=matrix><thead><tr><th>arm</th>{}</tr></thead>"
        "<tbody>{}</tbody></table>"
    ).format(head, rows)


def _matrix_cell(cell: StudyCell | None, experiment_url: UrlOf | None) -> Markup:
    if cell is None:
        return Markup('<td class="num meta">·</td>')
    text = (
        _num(cell.result.score)
        if cell.status is CellStatus.SEALED and cell.result is not None
        else cell.status.value
    )
    causes = "; ".join(
        f"attempt {a.number}: {a.outcome.value}" + (f" ({a.cause})" if a.cause else "")
        for a in cell.attempts
    )
    label = Markup("{}").format(text)
    experiment = cell.experiment_id
    if experiment is not None and experiment_url is not None:
        label = Markup('<a href="{}">{}</a>').format(experiment_url(experiment), text)
    tries = Markup(" <sup>×{}</sup>").format(len(cell.attempts)) if len(cell.attempts) > 1 else ""
    return Markup('<td class="num cell-{}" title="{}">{}{}</td>').format(
        cell.status.value, causes or "not started", label, tries
    )


def _attempts_html(page: StudyPage) -> Markup:
    rows = Markup("")
    for cell in page.record.cells:
        for attempt in cell.attempts:
            if attempt.outcome.value in ("sealed", "running"):
                continue
            rows += Markup(
                "<tr><td>{}</td><td class=num>{}</td><td class=num>{}</td><td>{}</td><td>{}</td>"
                "<td>{}</td><td><code>{}</code></td></tr>"
            ).format(
                cell.arm,
                cell.seed,
                attempt.number,
                attempt.outcome.value,
                attempt.cause,
                " ".join(
                    p
                    for p in (
                        attempt.worker,
                        attempt.host,
                        f"pid {attempt.pid}" if attempt.pid else "",
                    )
                    if p
                ),
                attempt.experiment_id,
            )
    if not rows:
        return Markup("")
    return Markup(
        "<h3>Attempts that did not seal</h3><table><thead><tr><th>arm</th><th class=num>seed</th>"
        "<th class=num>attempt</th><th>outcome</th><th>cause</th><th>worker</th>"
        "<th>experiment</th></tr></thead><tbody>{}</tbody></table>"
    ).format(rows)


# -- plots (inline SVG) ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return round(self.start + (value - self.low) / span * (self.end - self.start), 1)


def _range(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high - low < 1e-9:
        low, high = low - 0.05, high + 0.05
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _svg(title: str, width: int, height: int, body: Markup, legend: Markup | None = None) -> Markup:
    return Markup(
        '<figure style="margin:0"><figcaption><b>{}</b> {}</figcaption><svg role="img" '
        'aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}">{}</svg></figure>'
    ).format(title, legend or "", title, width, height, width, height, body)


def _axis_x(scale: _Scale, y: float, label: str, digits: int = 2) -> Markup:
    body = Markup('<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>').format(
        scale.start, y, scale.end, y
    )
    for i in range(5):
        value = scale.low + (scale.high - scale.low) * i / 4
        body += Markup('<text x="{}" y="{}" text-anchor="middle">{}</text>').format(
            scale(value), y + 13, f"{value:.{digits}f}"
        )
    body += Markup('<text x="{}" y="{}" text-anchor="end">{}</text>').format(
        scale.end, y + 26, label
    )
    return body


def _sealed(page: StudyPage) -> list[StudyCell]:
    return [
        c
        for c in page.record.cells
        if c.status is CellStatus.SEALED and c.result is not None and c.result.score is not None
    ]


def _strip_plot(page: StudyPage, experiment_url: UrlOf | None) -> Markup:
    cells = _sealed(page)
    if not cells:
        return Markup("")
    arms = [a for a in page.arms if a.seeds]
    values = [c.result.score for c in cells if c.result and c.result.score is not None]
    values += [a.baseline for a in arms if a.baseline is not None]
    values += [v for a in arms for v in (a.ci_low, a.ci_high) if v is not None]
    low, high = _range(values)
    height = _PAD + _ROW * len(arms) + 32
    scale = _Scale(low, high, _LEFT, WIDTH - _PAD)
    body = Markup("")
    for row, arm in enumerate(arms):
        y = _PAD + _ROW * row + _ROW / 2
        color = page.colors[arm.arm]
        body += Markup('<text x="{}" y="{}" text-anchor="end">{}</text>').format(
            _LEFT - 8, y + 4, arm.arm
        )
        if arm.ci_low is not None and arm.ci_high is not None:
            body += Markup(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2" opacity=".4">'
                "<title>95% CI {} to {}</title></line>"
            ).format(
                scale(arm.ci_low),
                y,
                scale(arm.ci_high),
                y,
                color,
                _num(arm.ci_low),
                _num(arm.ci_high),
            )
        if arm.mean is not None:
            body += Markup(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2">'
                "<title>mean {}</title></line>"
            ).format(scale(arm.mean), y - 9, scale(arm.mean), y + 9, color, _num(arm.mean))
        if arm.baseline is not None:
            body += Markup(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor" '
                'stroke-dasharray="3 2" opacity=".6"><title>baseline {}</title></line>'
            ).format(scale(arm.baseline), y - 11, scale(arm.baseline), y + 11, _num(arm.baseline))
        own = [c for c in cells if c.arm == arm.arm]
        for i, cell in enumerate(own):
            assert cell.result is not None and cell.result.score is not None
            jitter = ((i % 5) - 2) * 2.5
            dot = Markup(
                '<circle cx="{}" cy="{}" r="4" fill="{}" opacity=".8"><title>{} seed {}: '
                "{}</title></circle>"
            ).format(
                scale(cell.result.score),
                y + jitter,
                color,
                cell.arm,
                cell.seed,
                _num(cell.result.score),
            )
            if experiment_url is not None:
                dot = Markup('<a href="{}">{}</a>').format(
                    experiment_url(cell.result.experiment_id), dot
                )
            body += dot
    body += _axis_x(scale, _PAD + _ROW * len(arms) + 4, "score on the evaluation set")
    return _svg("Score per seed (dashed: baseline; bar: mean; band: 95% CI)", WIDTH, height, body)


def _curves_plot(page: StudyPage) -> Markup:
    cells = [c for c in _sealed(page) if c.result is not None and c.result.curve]
    if not cells:
        return Markup("")
    times = [t for c in cells if c.result for t, _ in c.result.curve]
    scores = [s for c in cells if c.result for _, s in c.result.curve]
    height = 220
    x = _Scale(0.0, max(times) or 1.0, _LEFT, WIDTH - _PAD)
    low, high = _range(scores)
    y = _Scale(low, high, height - 40, _PAD)
    body = Markup("")
    for i in range(5):
        value = low + (high - low) * i / 4
        body += Markup('<text x="{}" y="{}" text-anchor="end">{}</text>').format(
            _LEFT - 6, y(value) + 4, f"{value:.2f}"
        )
    for cell in cells:
        assert cell.result is not None
        color = page.colors.get(cell.arm, PALETTE[0])
        path = []
        for n, (t, s) in enumerate(cell.result.curve):
            path.append(f"{'M' if n == 0 else 'H'}{x(t)}" + ("" if n == 0 else f" V{y(s)}"))
            if n == 0:
                path[-1] += f" {y(s)}"
        path.append(f"H{x(max(times))}")
        body += Markup(
            '<path d="{}" fill="none" stroke="{}" stroke-width="1.5" opacity=".75">'
            "<title>{} seed {} ({})</title></path>"
        ).format(" ".join(path), color, cell.arm, cell.seed, cell.result.curve_scope)
    span = max(times) or 1.0
    digits = 0 if span >= 8 else 1 if span >= 0.8 else 2
    body += _axis_x(x, height - 36, "seconds since the cell started", digits=digits)
    scopes = sorted({c.result.curve_scope for c in cells if c.result and c.result.curve_scope})
    title = "Best so far, every seed (the optimizer's own scores" + (
        f": {', '.join(scopes)})" if scopes else ")"
    )
    return _svg(title, WIDTH, height, body, _legend(page))


def _cost_plot(page: StudyPage, experiment_url: UrlOf | None) -> Markup:
    cells = _sealed(page)
    if not cells:
        return Markup("")
    priced = all(c.result is not None and c.result.cost is not None for c in cells)

    def spend(cell: StudyCell) -> float:
        assert cell.result is not None
        return float(
            cell.result.cost if priced and cell.result.cost is not None else cell.result.lm_calls
        )

    height = 220
    low, high = _range([spend(c) for c in cells])
    x = _Scale(max(0.0, low) if low >= 0 else low, high, _LEFT, WIDTH - _PAD)
    slow, shigh = _range([c.result.score for c in cells if c.result and c.result.score is not None])
    y = _Scale(slow, shigh, height - 40, _PAD)
    body = Markup("")
    for i in range(5):
        value = slow + (shigh - slow) * i / 4
        body += Markup('<text x="{}" y="{}" text-anchor="end">{}</text>').format(
            _LEFT - 6, y(value) + 4, f"{value:.2f}"
        )
    for cell in cells:
        assert cell.result is not None and cell.result.score is not None
        dot = Markup(
            '<circle cx="{}" cy="{}" r="4" fill="{}" opacity=".8"><title>{} seed {}: {} '
            "at {}</title></circle>"
        ).format(
            x(spend(cell)),
            y(cell.result.score),
            page.colors.get(cell.arm, PALETTE[0]),
            cell.arm,
            cell.seed,
            _num(cell.result.score),
            _money(cell.result.cost) if priced else f"{cell.result.lm_calls} LM calls",
        )
        if experiment_url is not None:
            dot = Markup('<a href="{}">{}</a>').format(
                experiment_url(cell.result.experiment_id), dot
            )
        body += dot
    label = "cost of the cell (USD)" if priced else "LM calls of the cell (no cost recorded)"
    body += _axis_x(x, height - 36, label, digits=4 if priced else 0)
    return _svg("Score against cost, every cell", WIDTH, height, body, _legend(page))


def _legend(page: StudyPage) -> Markup:
    """The arms' colours, as text beside the caption (never over the points)."""
    return Markup(" ").join(
        Markup('<span style="color:{}">&#9632;</span> {}').format(page.colors[a.arm], a.arm)
        for a in page.arms
        if a.seeds
    )
