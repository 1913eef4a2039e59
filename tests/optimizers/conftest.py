"""Fixtures for optimizer capture tests: the offline LM, its data and metric, a store."""

from __future__ import annotations

import dspy
import pytest

from dspex import ResultStore


class QA(dspy.Module):
    def __init__(self):
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    def forward(self, question):
        return self.predict(question=question)


@pytest.fixture
def store():
    return ResultStore.open("memory://")
