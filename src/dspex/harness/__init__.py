"""The EvaluationHarness: evaluates a program over a dataset as one recorded Trial."""

from dspex.harness.harness import EvaluationHarness, score_of

__all__ = ["EvaluationHarness", "score_of"]
