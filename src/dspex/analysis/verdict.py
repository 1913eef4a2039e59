"""The answer an experiment gives its hypothesis: validated, rejected or inconclusive.

When an experiment ends with a baseline and a final evaluation on the same examples, the
paired comparison of the two (:func:`dspex.compare`) decides at the significance level
``analysis.alpha`` (default 0.05):

* **validated**: p < alpha and the final program scores higher than the baseline;
* **rejected**: p < alpha and it scores lower;
* **inconclusive**: p >= alpha, whatever the means say.

The journal stores the verdict in the sealed record (``experiment.hypothesis.verdict``)
when the experiment finishes; :func:`verdict_of` gives it for any experiment::

    verdict = dspex.verdict_of(experiment)
    verdict.outcome, verdict.test, verdict.p_value
    # (<VerdictOutcome.VALIDATED: 'validated'>, 'exact McNemar', 0.0039)

The baseline is the first trial on the experiment's reference example set that derives
from no other trial; the final evaluation is the last evaluation scored on that set after
it (see :func:`verdict_pair`).
"""

from __future__ import annotations

from dspex.analysis.compare import Comparison, compare, describe_scope, format_p
from dspex.config import get_settings
from dspex.errors import ValidationError
from dspex.model import Experiment, Trial, Verdict, VerdictOutcome, reference_scope
from dspex.model.scopes import baseline_in, comparable

__all__ = ["verdict_of", "verdict_pair", "with_verdict"]


def verdict_pair(experiment: Experiment) -> tuple[Trial, Trial] | None:
    """(baseline, final evaluation) on the experiment's reference example set, or None.

    The final evaluation is the last later trial on that set made by an evaluation
    (``metadata.role == "evaluation"``) when there is one, else the last later trial.
    """
    scope = reference_scope(experiment.trials)
    baseline = baseline_in(experiment.trials, scope)
    if baseline is None:
        return None
    later = [t for t in comparable(experiment.trials, scope) if t.index > baseline.index]
    evaluations = [t for t in later if t.metadata.get("role") == "evaluation"]
    last = (evaluations or later)[-1:]
    return (baseline, last[0]) if last else None


def verdict_of(
    experiment: Experiment,
    *,
    alpha: float | None = None,
    baseline: Trial | str | None = None,
    final: Trial | str | None = None,
    seed: int = 0,
) -> Verdict | None:
    """The verdict on ``experiment``'s hypothesis (None without a baseline and a final
    evaluation on one example set).

    ``baseline`` and ``final`` (trials or trial ids) override the trials chosen by
    :func:`verdict_pair`; ``alpha`` defaults to the ``analysis.alpha`` setting. Raises
    :class:`dspex.NotComparableError` for two trials scored on different examples.
    """
    alpha = get_settings().analysis.alpha if alpha is None else alpha
    if not 0 < alpha < 1:
        raise ValidationError(f"alpha must be between 0 and 1 (exclusive), not {alpha!r}")
    if baseline is None and final is None:
        pair = verdict_pair(experiment)
        if pair is None:
            return None
        baseline, final = pair
    if baseline is None or final is None:
        raise ValidationError("give both baseline and final, or neither (to let dspex choose)")
    first, last = _trial(experiment, baseline), _trial(experiment, final)
    return _verdict(compare(first, last, seed=seed), alpha, experiment)


def _trial(experiment: Experiment, trial: Trial | str) -> Trial:
    return experiment.trial(trial) if isinstance(trial, str) else trial


def _verdict(comparison: Comparison, alpha: float, experiment: Experiment) -> Verdict:
    c = comparison
    if not c.significant(alpha):
        outcome = VerdictOutcome.INCONCLUSIVE
    else:
        outcome = VerdictOutcome.VALIDATED if c.difference > 0 else VerdictOutcome.REJECTED
    return Verdict(
        outcome=outcome,
        alpha=alpha,
        test=c.test,
        p_value=min(1.0, max(0.0, c.p_value)),
        effect=c.difference,
        effect_size=c.effect_size,
        ci_low=c.interval.low,
        ci_high=c.interval.high,
        ci_method=c.interval.method,
        confidence=c.interval.confidence,
        n=c.n,
        wins=c.wins,
        losses=c.losses,
        ties=c.ties,
        baseline_trial_id=c.a.id,
        final_trial_id=c.b.id,
        scope=c.scope,
        reason=_reason(c, alpha, outcome),
        **({"decided_at": experiment.completed_at} if experiment.completed_at else {}),
    )


def _reason(c: Comparison, alpha: float, outcome: VerdictOutcome) -> str:
    scores = (
        f"Trial {c.b.index} scored {c.mean_b:.3f} against the baseline's (Trial {c.a.index}) "
        f"{c.mean_a:.3f} on {describe_scope(c.scope)}: {c.difference:+.3f}"
    )
    p = f"{c.test} p={format_p(c.p_value)}"
    if outcome is VerdictOutcome.INCONCLUSIVE:
        return f"{scores}; {p} is not below alpha {alpha:g}: no significant difference"
    better = "better" if outcome is VerdictOutcome.VALIDATED else "worse"
    return f"{scores}; {p} < alpha {alpha:g}: significantly {better}"


def with_verdict(experiment: Experiment, *, alpha: float | None = None) -> Experiment:
    """``experiment`` with its hypothesis decided (unchanged without a hypothesis or a pair)."""
    hypothesis = experiment.hypothesis
    if hypothesis is None:
        return experiment
    verdict = verdict_of(experiment, alpha=alpha)
    if verdict is None:
        return experiment
    return experiment.replace(hypothesis=hypothesis.replace(verdict=verdict, status=verdict.status))
