"""A tiny deterministic DSPy LM for capture tests (the full offline LM lives in dspex.offline)."""

from __future__ import annotations

import re
import threading

import dspy
import pytest

from dspex.offline.lm import answering_lm


class AdditionEngine:
    """Answers `a + b` questions; counts its calls; raises on 'explode', babbles on 'garble'.

    An ``answerer`` for :func:`dspex.offline.lm.answering_lm`, which makes it a ``dspy.LM``
    on every supported DSPy (an engine on DSPy 3.4, a ``forward`` before)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def answer(self, model, system, messages, temperature, candidate=0):
        with self._lock:
            self.calls += 1
        text = " ".join(text for _, text in messages)
        if "explode" in text:
            raise RuntimeError("the engine exploded")
        if "garble" in text:  # no output fields at all: every adapter fails to parse it
            return "I refuse to use markers.", 1, 5
        numbers = (
            [int(n) for n in re.findall(r"(\d+) \+ (\d+)", text)[-1]] if " + " in text else [0]
        )
        answer = str(sum(numbers))
        return f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]", len(text.split()), 3


def addition_lm(engine: AdditionEngine, model: str = "test/addition", **settings) -> dspy.LM:
    """The ``dspy.LM`` the capture tests write themselves, over ``engine``."""
    settings.setdefault("temperature", 0.0)
    return answering_lm(model, engine, **settings)


@pytest.fixture
def engine() -> AdditionEngine:
    return AdditionEngine()


@pytest.fixture
def lm(engine):
    lm = addition_lm(engine)
    with dspy.context(lm=lm):
        yield lm


@pytest.fixture
def store():
    from dspex import ResultStore

    return ResultStore.open("memory://")


def exact(example, prediction, trace=None) -> bool:
    return str(example.answer) == str(prediction.answer)


def addition_set(n: int, offset: int = 0) -> list[dspy.Example]:
    return [
        dspy.Example(
            question=f"What is {i} + {i + offset}?", answer=str(2 * i + offset)
        ).with_inputs("question")
        for i in range(n)
    ]
