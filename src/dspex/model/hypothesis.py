"""The hypothesis an experiment tests."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from dspex.ids import new_id
from dspex.model._base import HypothesisId, JsonDict, Record

__all__ = ["Hypothesis", "HypothesisStatus", "HypothesisType"]


class HypothesisType(StrEnum):
    COMPARATIVE = "comparative"
    EXPLORATORY = "exploratory"


class HypothesisStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    VALIDATED = "validated"
    REJECTED = "rejected"


class Hypothesis(Record):
    """A research question and the prediction an experiment checks.

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
    metadata: JsonDict = Field(default_factory=dict)
