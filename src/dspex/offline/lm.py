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

DSPy 3.4 takes the engine as ``dspy.LM(engine=...)``; DSPy 3.2 and 3.3, which have no
engines, get an :class:`OfflineLM` (a ``dspy.LM`` whose ``forward`` asks the engine,
through DSPy's own request cache when ``cache=True``) with the same answers.
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
from dspex.offline.instructions import gepa_prompt_reflection
from dspex.offline.prompt import parse, render
from dspex.offline.skills import Draws, answer_fields

__all__ = ["AnswerEngine", "AsyncOfflineEngine", "OfflineEngine", "answering_lm", "offline_lm"]

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

    # -- the answer -------------------------------------------------------------------
    def answer(
        self,
        model: str,
        system: str,
        messages: list[tuple[str, str]],
        temperature: float,
        candidate: int = 0,
    ) -> tuple[str, int, int]:
        """(text, input tokens, output tokens) of one request; counted."""
        prompt_text = "\n".join([system, *(f"{role}: {text}" for role, text in messages)])
        key = f"{self.seed}\x00{temperature!r}\x00{prompt_text}".encode()
        if candidate and temperature > 0:
            key += f"\x00candidate {candidate}".encode()
        draws = Draws(hashlib.sha256(key).digest(), temperature)
        raw = gepa_prompt_reflection(messages[-1][1], draws) if messages and not system else None
        if raw is not None:  # GEPA's own proposer (DSPy 3.2, 3.3): a plain prompt
            output = raw
        else:
            prompt = parse(system, messages)
            output = render(answer_fields(prompt, draws), prompt)
        if self.latency > 0:
            time.sleep(self.latency)
        with self._lock:
            self._calls[model] += 1
        return output, len(prompt_text.split()), len(output.split())

    # -- the engine contract (DSPy 3.4) -------------------------------------------------
    def complete(self, request: Any) -> Any:
        return _complete(self, request, self._candidate_number(request))

    def _candidate_number(self, request: Any) -> int:
        return _candidate_number(self._candidates, request)

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


def _complete(answerer: Any, request: Any, candidate: int) -> Any:
    """An lm15 ``Response`` to ``request`` from ``answerer.answer(...)`` (DSPy 3.4)."""
    from dspy.clients.engines.base import validate_request
    from dspy.lm15 import Message, Response, TextPart, Usage

    validate_request(request)
    output, input_tokens, output_tokens = answerer.answer(
        request.model,
        _system_text(request.system),
        [(m.role, m.text or "") for m in request.messages],
        float(request.config.temperature or 0.0),
        candidate,
    )
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


def _candidate_number(local: threading.local, request: Any) -> int:
    """0, or k for the k-th repeat of the same request object in this thread (or task).

    DSPy asks an engine for ``n`` candidates by sending the same request ``n`` times
    in a row; numbering the repeats lets each candidate be its own draw.
    """
    try:
        task = id(asyncio.current_task())
    except RuntimeError:  # no running event loop: a plain synchronous call
        task = 0
    last = getattr(local, "last", None)
    if last is not None and last[0] == task and last[1] is request:
        number = int(last[2]) + 1
    else:
        number = 0
    local.last = (task, request, number)
    return number


class AnswerEngine:
    """A DSPy 3.4 engine over any ``answerer`` with ``answer(model, system, messages,
    temperature, candidate) -> (text, input tokens, output tokens)``."""

    def __init__(self, answerer: Any) -> None:
        self.answerer = answerer
        self._candidates = threading.local()

    def complete(self, request: Any) -> Any:
        return _complete(self.answerer, request, _candidate_number(self._candidates, request))

    async def acomplete(self, request: Any) -> Any:
        return self.complete(request)

    def stream(self, request: Any) -> Iterator[Any]:
        from dspy.lm15 import response_to_events

        return iter(response_to_events(self.complete(request)))

    def close(self) -> None:
        """Nothing to release."""

    def __deepcopy__(self, memo: dict[int, Any]) -> AnswerEngine:
        return self

    def __getattr__(self, name: str) -> Any:
        # the answerer's own attributes (its call counter): ``lm.engine.calls`` on any DSPy
        if name == "answerer":
            raise AttributeError(name)
        return getattr(self.answerer, name)


class _AsyncAnswerEngine:
    def __init__(self, sync: AnswerEngine) -> None:
        self.sync = sync

    async def complete(self, request: Any) -> Any:
        return self.sync.complete(request)

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        for event in self.sync.stream(request):
            yield event

    async def aclose(self) -> None:
        """Nothing to release."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _AsyncAnswerEngine:
        return self


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


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _legacy_lm_class() -> type:
    """``dspy.LM`` answering from an :class:`OfflineEngine`, for DSPy without engines."""
    import dspy
    from dspy.clients.cache import request_cache

    class OfflineLM(dspy.LM):  # type: ignore[misc]  # DSPy ships no type information
        """A ``dspy.LM`` whose requests the offline engine answers (DSPy 3.2, 3.3)."""

        def __init__(self, model: str, *, engine: Any, **settings: Any) -> None:
            super().__init__(model, **settings)
            self.engine = engine

        def forward(
            self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kw: Any
        ) -> Any:
            kw = dict(kw)
            cache = kw.pop("cache", self.cache)
            messages = messages or [{"role": "user", "content": prompt}]
            complete = self._complete
            if cache:
                complete = request_cache(cache_arg_name="request")(complete)
            return complete(
                request={"model": self.model, "messages": messages, **self.kwargs, **kw}
            )

        async def aforward(
            self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kw: Any
        ) -> Any:
            return self.forward(prompt, messages, **kw)

        def _complete(self, request: dict[str, Any]) -> Any:
            import litellm

            messages = [
                (m.get("role", "user"), _text(m.get("content"))) for m in request["messages"]
            ]
            system = "\n".join(text for role, text in messages if role == "system")
            chat = [(role, text) for role, text in messages if role != "system"]
            temperature = float(request.get("temperature") or 0.0)
            choices, tokens_in, tokens_out = [], 0, 0
            for candidate in range(int(request.get("n") or 1)):
                text, tokens_in, out = self.engine.answer(
                    self.model, system, chat, temperature, candidate
                )
                tokens_out += out
                choices.append(
                    {
                        "index": candidate,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                )
            return litellm.ModelResponse(
                model=self.model,
                choices=choices,
                usage={
                    "prompt_tokens": tokens_in,
                    "completion_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out,
                },
            )

    return OfflineLM


def answering_lm(model: str, answerer: Any, **settings: Any) -> Any:
    """A ``dspy.LM`` for ``model`` whose requests ``answerer`` answers, on DSPy 3.2 to 3.4:
    ``answerer.answer(model, system, messages, temperature, candidate)`` returns
    ``(text, input tokens, output tokens)`` (``messages``: ``(role, text)`` pairs). For
    LMs a test writes itself; DSPy's cache is off unless ``cache=True``."""
    import dspy

    settings.setdefault("cache", False)
    if not _has_engines():
        return _legacy_lm_class()(model, engine=answerer, **settings)
    engine = AnswerEngine(answerer)
    return dspy.LM(model, engine=engine, async_engine=_AsyncAnswerEngine(engine), **settings)


def _has_engines() -> bool:
    import inspect

    import dspy

    return "engine" in inspect.signature(dspy.LM.__init__).parameters


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
    if not _has_engines():
        return _legacy_lm_class()(_check_model(model), engine=engine, **settings)
    return dspy.LM(
        _check_model(model), engine=engine, async_engine=AsyncOfflineEngine(engine), **settings
    )
