"""The hypothesis an experiment tests, and the verdict its results gave."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from dspex.ids import new_id
from dspex.model._base import HypothesisId, JsonDict, Record, TrialId, UtcDatetime, utc_now
from dspex.model.trial import ScoreScope

__all__ = ["Hypothesis", "HypothesisStatus", "HypothesisType", "Verdict", "VerdictOutcome"]


class HypothesisType(StrEnum):
    COMPARATIVE = "comparative"
    EXPLORATORY = "exploratory"


class HypothesisStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    VALIDATED = "validated"
    REJECTED = "rejected"
    INCONCLUSIVE = "inconclusive"


class VerdictOutcome(StrEnum):
    """What the paired comparison of the final evaluation against the baseline says."""

    VALIDATED = "validated"  # significantly better than the baseline
    REJECTED = "rejected"  # significantly worse than the baseline
    INCONCLUSIVE = "inconclusive"  # no significant difference at this alpha


class Verdict(Record):
    """The answer an experiment gave its hypothesis, with the evidence.

    ``effect`` is the mean per-example difference (final minus baseline) over the ``n``
    examples both were scored on, ``ci_low``/``ci_high`` its paired bootstrap interval;
    ``test`` (exact McNemar for 0/1 metrics, Wilcoxon signed-rank otherwise) gave
    ``p_value``, compared with ``alpha``. ``effect_size`` is the matched-pairs
    rank-biserial correlation, from -1 (the baseline won every example that differed)
    to +1 (the final program won every one).
    """

    outcome: VerdictOutcome
    alpha: float = Field(gt=0, lt=1)
    test: str = Field(min_length=1)
    p_value: float = Field(ge=0, le=1)
    effect: float
    effect_size: float | None = Field(default=None, ge=-1, le=1)
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str = ""
    confidence: float = Field(default=0.95, gt=0, lt=1)
    n: int = Field(ge=0)
    wins: int = Field(default=0, ge=0)
    losses: int = Field(default=0, ge=0)
    ties: int = Field(default=0, ge=0)
    baseline_trial_id: TrialId
    final_trial_id: TrialId
    scope: ScoreScope
    reason: str = ""
    decided_at: UtcDatetime = Field(default_factory=utc_now)

    @property
    def status(self) -> HypothesisStatus:
        return HypothesisStatus(self.outcome.value)


class Hypothesis(Record):
    """A research question and the prediction an experiment checks.

    ``verdict`` is set when the experiment ends with a baseline and a final evaluation
    on the same examples (see :func:`dspex.analysis.decide`); ``status`` then follows it.

    >>> Hypothesis(research_question="Do appended rules beat demos on arithmetic?",
    ...            prediction="rules score higher", type="comparative").type
    <HypothesisType.COMPARATIVE: 'comparative'>
    """

    id: HypothesisId = Field(default_factory=lambda: new_id("hyp"))
    research_question: str = Field(min_length=1)
    prediction: str = ""
    independent_variables: tuple[str, ...] = ()
    dependent_variables: tuple[str, ...] = ()
    type: HypothesisType = HypothesisType.EXPLORATORY
    status: HypothesisStatus = HypothesisStatus.PROPOSED
    verdict: Verdict | None = None
    metadata: JsonDict = Field(default_factory=dict)
