"""The EvaluationHarness: evaluates a program over a dataset as one recorded Trial."""

from dspex.capture.scoring import score_of
from dspex.harness.harness import EvaluationHarness

__all__ = ["EvaluationHarness", "score_of"]
