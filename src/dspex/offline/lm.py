"""A deterministic offline language model, plugged into DSPy as an ordinary ``dspy.LM``.

``offline_lm()`` returns a real ``dspy.LM`` whose engine answers from the prompt alone,
so adapters, callbacks, history, usage tracking and optimizers run exactly as they
would against a hosted model::

    >>> import dspy
    >>> lm = offline_lm(seed=0)
    >>> with dspy.context(lm=lm):
    ...     dspy.Predict("question -> answer")(question="What is 17 + 25?").answer
    '42'
    >>> lm.engine.calls
    1

The answer depends only on (seed, the full prompt, temperature, and for a call that
asks for ``n > 1`` candidates, the candidate's number): no shared random state, so
threads and worker processes see the same answers in any order.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

from dspex.errors import ValidationError
from dspex.offline.prompt import parse, render
from dspex.offline.skills import Draws, answer_fields

__all__ = ["AsyncOfflineEngine", "OfflineEngine", "offline_lm"]

#: The models this engine knows: ``offline/<profile>``.
PROFILES = ("arith",)


def _check_model(model: str) -> str:
    provider, _, profile = model.partition("/")
    if provider != "offline" or profile not in PROFILES:
        valid = ", ".join(f"offline/{p}" for p in PROFILES)
        raise ValidationError(f"unknown offline model {model!r}; use one of: {valid}")
    return model


def _system_text(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    return "".join(getattr(part, "text", "") or "" for part in system)


class OfflineEngine:
    """A DSPy engine (``complete(Request) -> Response``) that needs no network.

    ``seed`` changes which calls slip at temperature > 0; ``latency`` (seconds) makes
    every call sleep that long, to make progress displays and timeouts observable.
    ``calls`` counts the
    requests this engine answered (``calls_by_model`` per model name), under a lock.
    ``copy.deepcopy`` returns the engine itself, so deep copies of programs and LMs
    share it; pickling (pickle or cloudpickle) makes a new engine with the seed and
    the counts so far. ``dspy.LM.dump_state`` saves it through :meth:`dump_state` /
    :meth:`load_state`.
    """

    def __init__(self, seed: int = 0, latency: float = 0.0):
        self.seed = int(seed)
        self.latency = float(latency)
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._candidates = threading.local()

    # -- counting ---------------------------------------------------------------------
    @property
    def calls(self) -> int:
        """How many requests this engine has answered."""
        with self._lock:
            return sum(self._calls.values())

    @property
    def calls_by_model(self) -> dict[str, int]:
        """Requests answered, per ``Request.model``."""
        with self._lock:
            return dict(self._calls)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- the engine contract ----------------------------------------------------------
    def complete(self, request: Any) -> Any:
        from dspy.clients.engines.base import validate_request
        from dspy.lm15 import Message, Response, TextPart, Usage

        validate_request(request)
        system = _system_text(request.system)
        messages = [(m.role, m.text or "") for m in request.messages]
        prompt_text = "\n".join([system, *(f"{role}: {text}" for role, text in messages)])
        temperature = float(request.config.temperature or 0.0)
        key = f"{self.seed}\x00{temperature!r}\x00{prompt_text}".encode()
        candidate = self._candidate_number(request)
        if candidate and temperature > 0:
            key += f"\x00candidate {candidate}".encode()
        draws = Draws(hashlib.sha256(key).digest(), temperature)
        prompt = parse(system, messages)
        output = render(answer_fields(prompt, draws), prompt)
        if self.latency > 0:
            time.sleep(self.latency)
        with self._lock:
            self._calls[request.model] += 1
        input_tokens, output_tokens = len(prompt_text.split()), len(output.split())
        return Response(
            id=None,
            model=request.model,
            message=Message.assistant([TextPart(output)]),
            finish_reason="stop",
            usage=Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            ),
        )

    def _candidate_number(self, request: Any) -> int:
        """0, or k for the k-th repeat of the same request object in this thread (or task).

        DSPy asks an engine for ``n`` candidates by sending the same request ``n`` times
        in a row; numbering the repeats lets each candidate be its own draw.
        """
        try:
            task = id(asyncio.current_task())
        except RuntimeError:  # no running event loop: a plain synchronous call
            task = 0
        last = getattr(self._candidates, "last", None)
        if last is not None and last[0] == task and last[1] is request:
            number = last[2] + 1
        else:
            number = 0
        self._candidates.last = (task, request, number)
        return number

    def stream(self, request: Any) -> Iterator[Any]:
        from dspy.lm15 import response_to_events

        return iter(response_to_events(self.complete(request)))

    def close(self) -> None:
        """Nothing to release: the engine holds no connection."""

    # -- saving and pickling ----------------------------------------------------------
    def dump_state(self) -> dict[str, Any]:
        """The JSON state ``dspy.LM.dump_state`` records (settings; counts are not state)."""
        return {"seed": self.seed, "latency": self.latency}

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> OfflineEngine:
        return cls(seed=int(state.get("seed", 0)), latency=float(state.get("latency", 0.0)))

    def __deepcopy__(self, memo: dict[int, Any]) -> OfflineEngine:
        # DSPy deep-copies programs (and the LMs set on them) all the time; like a
        # client connection, the engine is shared rather than forked, so its counter
        # keeps counting every call made through any copy in this process.
        return self

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {**self.dump_state(), "calls": dict(self._calls)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.seed = state["seed"]
        self.latency = state.get("latency", 0.0)
        self._lock = threading.Lock()
        self._calls = Counter(state.get("calls", {}))
        self._candidates = threading.local()

    def __repr__(self) -> str:
        return f"OfflineEngine(seed={self.seed}, latency={self.latency})"


class AsyncOfflineEngine:
    """The async face of an :class:`OfflineEngine`; it shares the engine's counter."""

    def __init__(self, sync: OfflineEngine):
        self.sync = sync

    async def complete(self, request: Any) -> Any:
        return self.sync.complete(request)

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        for event in self.sync.stream(request):
            yield event

    async def aclose(self) -> None:
        """Nothing to release."""

    def __deepcopy__(self, memo: dict[int, Any]) -> AsyncOfflineEngine:
        return self

    def dump_state(self) -> dict[str, Any]:
        return self.sync.dump_state()

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> AsyncOfflineEngine:
        return cls(OfflineEngine.load_state(state))


def offline_lm(
    model: str = "offline/arith", seed: int = 0, *, latency: float = 0.0, **settings: Any
) -> Any:
    """A ``dspy.LM`` backed by a fresh :class:`OfflineEngine` (so a fresh call counter).

    ``settings`` go to ``dspy.LM`` (``temperature``, ``max_tokens``, ``callbacks``,
    ``num_retries``...). DSPy's response cache is off unless ``cache=True`` is given:
    the model is cheap and deterministic, and a cache would hide calls from its counter.
    """
    import dspy

    engine = OfflineEngine(seed=seed, latency=latency)
    settings.setdefault("cache", False)
    return dspy.LM(
        _check_model(model), engine=engine, async_engine=AsyncOfflineEngine(engine), **settings
    )
