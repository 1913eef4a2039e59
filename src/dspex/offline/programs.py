"""The small DSPy program the demo optimizes: one predictor from question to answer.

Defined at module level so that its class path is importable (``dspex.offline.ArithQA``)
and it travels to worker processes by reference::

    >>> import dspy, dspex
    >>> with dspy.context(lm=dspex.offline_lm()):
    ...     dspex.offline.ArithQA()(question="What is 6 * 7?").answer
    '42'
"""

from __future__ import annotations

from typing import Any

import dspy

__all__ = ["ArithQA"]


class ArithQA(dspy.Module):  # type: ignore[misc]  # DSPy ships no type information
    """Answers a question with one ``dspy.Predict("question -> answer")`` named ``predict``."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    def forward(self, question: str) -> Any:
        return self.predict(question=question)

    async def aforward(self, question: str) -> Any:
        return await self.predict.acall(question=question)
