"""A tiny deterministic DSPy LM for capture tests (the full offline LM lives in dspex.offline)."""

from __future__ import annotations

import re
import threading

import dspy
import pytest
from dspy.lm15 import Message, Response, TextPart, Usage


class AdditionEngine:
    """Answers `a + b` questions; counts its calls; raises on 'explode', babbles on 'garble'."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def complete(self, request):
        with self._lock:
            self.calls += 1
        text = " ".join(m.text or "" for m in request.messages)
        if "explode" in text:
            raise RuntimeError("the engine exploded")
        if "garble" in text:  # no output fields at all: every adapter fails to parse it
            return Response(
                id=None,
                model="addition",
                message=Message.assistant([TextPart("I refuse to use markers.")]),
                finish_reason="stop",
                usage=Usage(input_tokens=1, output_tokens=5, total_tokens=6),
            )
        numbers = (
            [int(n) for n in re.findall(r"(\d+) \+ (\d+)", text)[-1]] if " + " in text else [0]
        )
        answer = str(sum(numbers))
        output = f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"
        words = len(text.split())
        return Response(
            id=None,
            model="addition",
            message=Message.assistant([TextPart(output)]),
            finish_reason="stop",
            usage=Usage(input_tokens=words, output_tokens=3, total_tokens=words + 3),
        )

    def stream(self, request):
        raise NotImplementedError("streaming is not used in these tests")

    def close(self):
        pass


class AsyncAdditionEngine:
    def __init__(self, sync: AdditionEngine) -> None:
        self.sync = sync

    async def complete(self, request):
        return self.sync.complete(request)

    def stream(self, request):
        raise NotImplementedError("streaming is not used in these tests")

    async def aclose(self):
        pass


@pytest.fixture
def engine() -> AdditionEngine:
    return AdditionEngine()


@pytest.fixture
def lm(engine):
    lm = dspy.LM(
        "test/addition",
        engine=engine,
        async_engine=AsyncAdditionEngine(engine),
        cache=False,
        temperature=0.0,
    )
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
