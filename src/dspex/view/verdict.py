"""The hypothesis verdict, rendered the same way in every view.

    >>> verdict_line(None)
    'no verdict'

:func:`verdict_line` is one line of text (terminal, CLI, Markdown) and
:func:`verdict_fields` the labelled rows of a details table; the HTML fragment that any
page can include is :func:`dspex.view.html.verdict_html` (``templates/_verdict.html``).
"""

from __future__ import annotations

from dspex.analysis import verdict_of, verdict_pair
from dspex.formatting import format_p
from dspex.model import Experiment, Verdict
from dspex.model.scopes import reference_scope

__all__ = ["no_verdict_reason", "verdict_fields", "verdict_line"]


def _ci(verdict: Verdict) -> str:
    if verdict.ci_low is None or verdict.ci_high is None:
        return "no interval"
    return (
        f"{verdict.confidence:.0%} CI {verdict.ci_low:+.3f} to {verdict.ci_high:+.3f}, "
        f"{verdict.ci_method}"
    )


def verdict_line(verdict: Verdict | None) -> str:
    """``validated: +0.400 on dev (n=20) (95% CI ...), exact McNemar p=0.0078 < 0.05``."""
    if verdict is None:
        return "no verdict"
    relation = "<" if verdict.p_value < verdict.alpha else ">="
    effect = f"{verdict.effect:+.3f} on {verdict.scope.label} ({_ci(verdict)})"
    test = f"{verdict.test} p={format_p(verdict.p_value)} {relation} alpha {verdict.alpha:g}"
    return f"{verdict.outcome.value}: {effect}, {test}"


def verdict_fields(verdict: Verdict) -> list[tuple[str, str]]:
    """Labelled evidence: outcome, difference, interval, test, effect size, examples."""
    effect_size = "n/a" if verdict.effect_size is None else f"{verdict.effect_size:+.2f}"
    return [
        ("verdict", verdict.outcome.value),
        ("difference", f"{verdict.effect:+.3f} (final minus baseline, mean per example)"),
        ("interval", _ci(verdict)),
        ("test", f"{verdict.test}, p = {format_p(verdict.p_value)}, alpha = {verdict.alpha:g}"),
        ("effect size", f"{effect_size} (rank-biserial correlation)"),
        ("examples", f"{verdict.n} on {verdict.scope.label}: {verdict.wins} better, "
                     f"{verdict.losses} worse, {verdict.ties} unchanged"),
        ("why", verdict.reason),
    ]  # fmt: skip


def no_verdict_reason(experiment: Experiment) -> str:
    """Why an experiment's hypothesis has no stored verdict, so that views say so.

    A record written before verdicts existed gets its verdict computed here, marked as such.
    """
    if experiment.hypothesis is None:
        return "no hypothesis"
    if not experiment.status.is_final:
        return "none yet: the experiment is still running"
    if verdict_pair(experiment) is not None:
        computed = verdict_of(experiment)
        return f"not in the record, computed now: {verdict_line(computed)}"
    scope = reference_scope(experiment.trials)
    where = f" on {scope.label}" if scope else ""
    return (
        f"none: no baseline and later evaluation{where} to compare "
        "(evaluate the baseline and the optimized program on the same dev set)"
    )
