"""Retrievals and embedding calls: recorded like LM calls, though DSPy reports them to no one.

DSPy's callbacks see modules, LMs, adapters and tools; ``dspy.retrievers.Embeddings``,
``dspy.Embedder`` and ``dspy.ColBERTv2`` call no callback, and ``dspy.Retrieve`` is reported
as a module without what it found. :mod:`dspex.capture.dspy_retrieval` patches them (see
:mod:`dspex.capture.instrument`); a user's own search is marked with :func:`retriever` or
:func:`retrieval`. Each call becomes one event, placed where the callback would place an
LM call made at the same point (:func:`dspex.capture.callback.place_call`: under the
calling module, in the trial of the calling thread, task or worker)::

    @dspex.retriever
    def search(query: str, k: int = 3) -> list[dict]:
        return my_index.search(query, k)              # each call: a ``retrieval`` event

    with dspex.retrieval("web search", query, k=5) as found:
        found.returned(client.search(query, 5))       # the same, around any code

A ``retrieval`` event holds the queries, ``k``, the passages of each query as ranked
(text, id, score: :func:`passages_of` reads the shapes retrievers return), the
retriever's settings with secrets hidden, its latency and error; an ``embedding`` event
the model, how many texts, batches, cache hits, tokens and cost when reported, latency
and error. A call made inside a recorded retrieval (the rm of ``dspy.Retrieve``, the
embedder of ``Embeddings``) is recorded under that retrieval: its event is emitted when
the retrieval ends, with an id drawn when it began.

Recording never breaks the user's call: dspex's own work runs in a guard that, when it
fails, stops recording that piece, warns on the experiment and lets the call go on.
"""

from __future__ import annotations

import functools
import inspect
import logging
import numbers
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, ParamSpec, Protocol, TypeVar, cast, overload

from dspex.capture.context import LISTENER_KEY, CaptureListener, active_listener, lookup
from dspex.capture.jsonable import jsonable
from dspex.capture.recorder import TrialRecorder, new_event_id
from dspex.model.event import EventKind
from dspex.model.payloads import (
    EmbeddingPayload,
    ErrorPayload,
    LmUsage,
    Passage,
    RetrievalPayload,
)
from dspex.redact import redact, redact_settings

__all__ = [
    "MAX_TEXTS",
    "Found",
    "Where",
    "begin_retrieval",
    "degrade",
    "is_degraded",
    "passages_of",
    "qualified_name",
    "retrieval",
    "retriever",
    "use_placement",
    "where",
]

logger = logging.getLogger(__name__)

MAX_TEXTS = 16
"""An ``embedding`` event keeps the first texts embedded, at most this many."""

_RETRIEVAL: Final = EventKind.RETRIEVAL
_EMBEDDING: Final = EventKind.EMBEDDING

P = ParamSpec("P")
R = TypeVar("R")


# -- where a call is recorded ------------------------------------------------------------


class _Placed(Protocol):
    @property
    def recorder(self) -> TrialRecorder: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def module(self) -> str | None: ...
    @property
    def listener(self) -> CaptureListener | None: ...


_place_call: Callable[[Any], _Placed | None] | None = None
_active_call_id: Callable[[], str | None] = lambda: None  # noqa: E731


def use_placement(
    place_call: Callable[[Any], _Placed | None], active_call_id: Callable[[], str | None]
) -> None:
    """Called once by :mod:`dspex.capture.callback`, which knows the module calls in flight
    (this module sits below it: the patches of DSPy import it)."""
    global _place_call, _active_call_id
    _place_call, _active_call_id = place_call, active_call_id


class Where(NamedTuple):
    """Where one call is recorded."""

    recorder: TrialRecorder
    parent_id: str | None
    module: str | None
    listener: CaptureListener | None
    """Placed this top-level call: told when it ends."""


class _Open(NamedTuple):
    """A retrieval being recorded: what a call made inside it nests under."""

    recorder: TrialRecorder
    event_id: str
    module: str | None
    call_id: str | None  # DSPy's innermost call when it began


_open: ContextVar[_Open | None] = ContextVar("dspex_open_retrieval", default=None)


def where(instance: Any) -> Where | None:
    """Where a call on ``instance`` starting here is recorded, or None (nothing records
    here: the call runs as without dspex)."""
    opened = _open.get()
    if opened is not None and opened.call_id == _active_call_id():
        return Where(opened.recorder, opened.event_id, opened.module, None)
    placed = _place_call(instance) if _place_call is not None else None
    if placed is None:
        return None
    return Where(placed.recorder, placed.parent_id, placed.module, placed.listener)


def done(place: Where) -> None:
    if place.listener is not None:
        place.listener.calls_done(place.recorder)


# -- degraded mode: a failure of dspex's own code records less, never breaks a call ------

_degraded: dict[str, str] = {}
_degraded_lock = threading.Lock()


def is_degraded(piece: str) -> bool:
    return piece in _degraded


def degrade(piece: str, error: BaseException | str) -> None:
    """Record no more of ``piece`` in this process (until the patches are applied again),
    and say so on the experiment running here."""
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    with _degraded_lock:
        if piece in _degraded:
            return
        _degraded[piece] = reason
    message = (
        f"retrieval capture in degraded mode: {piece}: {reason}. From then on these calls "
        "are not recorded; they run as without dspex."
    )
    logger.warning("dspex: %s", message)
    listener = lookup(LISTENER_KEY) or active_listener()
    if listener is not None:
        try:
            listener.warn(message)
        except Exception:  # the log line above still says it
            logger.debug("dspex: could not warn the experiment", exc_info=True)


def restore(piece: str) -> None:
    """``piece`` records again (its patch was applied anew)."""
    with _degraded_lock:
        _degraded.pop(piece, None)


# -- payload parts ------------------------------------------------------------------------


def qualified_name(thing: Any) -> str:
    """``package.module.Class`` of an instance or class; ``package.module.function`` of a
    function; the ``model`` text of a string."""
    if isinstance(thing, str):
        return thing
    target = thing if inspect.isroutine(thing) or inspect.isclass(thing) else type(thing)
    target = getattr(target, "__func__", target)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if name is None:
        return type(thing).__name__
    module = getattr(target, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def _error(exc: BaseException | None) -> ErrorPayload | None:
    if exc is None:
        return None
    import traceback

    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


_TEXT_KEYS = ("long_text", "text", "passage", "content", "page_content", "document", "chunk")
_ID_KEYS = ("id", "pid", "doc_id", "document_id", "index", "idx")
_SCORE_KEYS = ("score", "similarity", "relevance_score")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _plain_id(value: Any) -> Any:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return jsonable(value)


def _fields(item: Any) -> Mapping[str, Any] | None:
    """``item`` as a mapping of its fields (a dict, dspy's dotdict, an Example, a record
    with attributes such as LangChain's ``Document``), or None for a plain value."""
    if isinstance(item, Mapping):
        return item
    store = getattr(item, "_store", None)
    if isinstance(store, dict):
        return store
    if isinstance(item, str | bytes | int | float | list | tuple) or item is None:
        return None
    found: dict[str, Any] = {}
    for key in (*_TEXT_KEYS, *_ID_KEYS, *_SCORE_KEYS, "metadata"):
        try:
            value = getattr(item, key, None)
        except Exception:  # noqa: BLE001 - an odd property: left out
            continue
        if value is not None and not callable(value):
            found[key] = value
    return found if set(found) - {"metadata"} else None


def _first(fields: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        if key in fields and fields[key] is not None:
            return key, fields[key]
    return None, None


def _passage(item: Any, *, id: Any = None, score: Any = None) -> Passage:
    """One returned item as a :class:`~dspex.model.payloads.Passage`."""
    if isinstance(item, str):
        return {"text": item, "id": _plain_id(id), "score": _number(score)}
    if isinstance(item, tuple) and len(item) == 2 and _number(item[1]) is not None:
        return _passage(item[0], id=id, score=item[1])  # (document, score), LangChain's way
    fields = _fields(item)
    if fields is None:
        unknown: Passage = {"text": None, "id": _plain_id(id), "score": _number(score)}
        unknown["metadata"] = {"value": jsonable(item)}
        return unknown
    _, text = _first(fields, _TEXT_KEYS)
    id_key, found_id = _first(fields, _ID_KEYS)
    score_key, found_score = _first(fields, _SCORE_KEYS)
    passage: Passage = {
        "text": text if isinstance(text, str) else (None if text is None else str(text)),
        "id": _plain_id(found_id if id is None else id),
        "score": _number(found_score if score is None else score),
    }
    skip = {*_TEXT_KEYS, id_key, score_key}
    metadata = {str(k): v for k, v in fields.items() if k not in skip}
    if metadata:
        passage["metadata"] = jsonable(redact(metadata))
    return passage


def passages_of(found: Any) -> list[Passage]:
    """The passages a retriever returned for one query, in its order: from a list of texts,
    of dicts or records (``long_text``/``text``/``content``..., ``id``/``pid``/``index``...,
    ``score``...), of ``(document, score)`` pairs, or from a ``dspy.Prediction`` (or dict)
    with ``passages`` and optional ``indices``/``ids``/``pids`` and ``scores``.

    >>> passages_of({"passages": ["Paris is..."], "indices": [4], "scores": [0.9]})
    [{'text': 'Paris is...', 'id': 4, 'score': 0.9}]
    >>> passages_of([{"pid": 7, "long_text": "Lima is...", "score": 21.5, "rank": 1}])
    [{'text': 'Lima is...', 'id': 7, 'score': 21.5, 'metadata': {'rank': 1}}]
    """
    if found is None:
        return []
    fields = None if isinstance(found, list | tuple | str) else _fields(found)
    if fields is not None and "passages" in fields:
        texts = fields["passages"]
        texts = (
            list(texts) if isinstance(texts, Sequence) and not isinstance(texts, str) else [texts]
        )
        _, ids = _first(fields, ("indices", "ids", "pids"))
        _, scores = _first(fields, ("scores",))
        return [
            _passage(text, id=_at(ids, rank), score=_at(scores, rank))
            for rank, text in enumerate(texts)
        ]
    if isinstance(found, str) or fields is not None:
        return [_passage(found)]
    try:
        items = list(found)
    except TypeError:
        return [_passage(found)]
    return [_passage(item) for item in items]


def _at(values: Any, index: int) -> Any:
    try:
        return values[index] if values is not None else None
    except (IndexError, KeyError, TypeError):
        return None


def _settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as JSON data, secrets hidden: simple values only (a client object, a
    corpus, a callable by its name)."""
    plain: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, str | int | float | bool) or value is None:
            plain[str(key)] = value
        elif callable(value):
            plain[str(key)] = qualified_name(value)
        elif isinstance(value, Mapping | list | tuple) and len(value) <= 32:
            plain[str(key)] = jsonable(value)
    return cast(dict[str, Any], redact(redact_settings(plain)))


def instance_settings(instance: Any) -> dict[str, Any]:
    """The public, simple attributes of a retriever object (secrets hidden)."""
    try:
        attributes = vars(instance)
    except TypeError:
        return {}
    return _settings({k: v for k, v in attributes.items() if not k.startswith("_")})


# -- a retrieval being recorded -----------------------------------------------------------


class Found:
    """What a recorded retrieval returned (:func:`retrieval`'s handle)."""

    __slots__ = ("result", "set")

    def __init__(self) -> None:
        self.result: Any = None
        self.set = False

    def returned(self, result: Any) -> Any:
        """Record ``result`` (any shape :func:`passages_of` reads; a list of results, one
        per query, for several queries) as what the retrieval found; returns it."""
        self.result, self.set = result, True
        return result


class Retrieval:
    """One retrieval from its start to :meth:`end`: its event id is drawn at the start, so
    that calls made inside it (an embedder, an inner retriever) nest under it."""

    __slots__ = ("place", "event_id", "payload", "started", "_token", "piece")

    def __init__(self, place: Where, piece: str, payload: RetrievalPayload) -> None:
        self.place = place
        self.piece = piece
        self.payload = payload
        self.event_id = new_event_id()
        self._token = _open.set(
            _Open(place.recorder, self.event_id, place.module, _active_call_id())
        )
        self.started = time.perf_counter()

    def end(
        self,
        results: list[list[Passage]] | None,
        error: BaseException | None = None,
        **extra: Any,
    ) -> None:
        """Emit the event (once), and tell the listener that placed it."""
        latency = (time.perf_counter() - self.started) * 1000
        try:
            _open.reset(self._token)
        except ValueError:  # ended in another context (a generator closed elsewhere)
            pass
        try:
            payload = self.payload
            payload["results"] = results or []
            payload["latency_ms"] = latency
            payload["error"] = _error(error)
            payload.update(extra)  # type: ignore[typeddict-item]
            self.place.recorder.emit(
                _RETRIEVAL,
                payload,
                parent_id=self.place.parent_id,
                json_ready=True,
                event_id=self.event_id,
            )
        finally:
            done(self.place)


def begin_retrieval(
    place: Where,
    piece: str,
    retriever: str,
    queries: list[Any],
    k: Any,
    settings: Mapping[str, Any],
) -> Retrieval:
    payload: RetrievalPayload = {
        "retriever": retriever,
        "module": place.module,
        "queries": jsonable(queries),
        "k": k if isinstance(k, int) and not isinstance(k, bool) else None,
        "results": [],
        "settings": _settings(settings),
        "latency_ms": None,
        "error": None,
    }
    return Retrieval(place, piece, payload)


def results_of(found: Any, queries: int) -> list[list[Passage]]:
    """Per query, the passages: a result per query when several were asked."""
    if queries > 1 and isinstance(found, list | tuple) and len(found) == queries:
        return [passages_of(one) for one in found]
    return [passages_of(found)]


# -- embeddings ------------------------------------------------------------------------------


@dataclass
class EmbeddingCall:
    """One embedding call's measures, filled while it runs (see :mod:`dspex.capture.
    dspy_retrieval`), turned into an ``embedding`` event by :meth:`payload`."""

    model: str
    embedder: str
    inputs: int
    texts: list[str]
    batch_size: int | None = None
    batches: int | None = None
    computed: int | None = None
    """Batches that reached the model (the rest came from DSPy's cache)."""
    provider_hits: int = 0
    """Batches that LiteLLM's own cache answered."""
    dimensions: int | None = None
    prompt_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None
    latency_ms: float | None = None
    error: BaseException | None = None

    def count_response(self, response: Any) -> None:
        """Add a provider response's usage, cost and cache hit (LiteLLM's)."""
        usage = getattr(response, "usage", None)
        prompt = _int(getattr(usage, "prompt_tokens", None))
        total = _int(getattr(usage, "total_tokens", None))
        hidden = getattr(response, "_hidden_params", None) or {}
        if hidden.get("cache_hit"):
            self.provider_hits += 1
            return
        if prompt is not None:
            self.prompt_tokens = (self.prompt_tokens or 0) + prompt
        if total is not None:
            self.total_tokens = (self.total_tokens or 0) + total
        cost = _number(hidden.get("response_cost"))
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost

    def payload(
        self, *, module: str | None, purpose: str, retriever: str | None
    ) -> EmbeddingPayload:
        hits: int | None = None
        if self.batches is not None and self.computed is not None:
            hits = max(self.batches - self.computed, 0) + self.provider_hits
        usage: LmUsage | None = None
        if self.prompt_tokens is not None or self.total_tokens is not None:
            usage = {}
            if self.prompt_tokens is not None:
                usage["prompt_tokens"] = self.prompt_tokens
            if self.total_tokens is not None:
                usage["total_tokens"] = self.total_tokens
        cost = self.cost
        if cost is None and hits is not None and self.batches and hits >= self.batches:
            cost = 0.0  # everything came from a cache: nothing was paid
        return {
            "model": self.model,
            "embedder": self.embedder,
            "module": module,
            "purpose": purpose,
            "retriever": retriever,
            "inputs": self.inputs,
            "texts": [] if purpose == "index" else self.texts[:MAX_TEXTS],
            "batch_size": self.batch_size,
            "batches": self.batches,
            "cache_hits": hits,
            "dimensions": self.dimensions,
            "usage": usage,
            "cost": cost,
            "latency_ms": self.latency_ms,
            "error": _error(self.error),
        }


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def emit_embedding(place: Where, payload: EmbeddingPayload) -> None:
    try:
        place.recorder.emit(_EMBEDDING, payload, parent_id=place.parent_id, json_ready=True)
    finally:
        done(place)


# -- the public way: a user's search marked as a retriever --------------------------------

_K_NAMES = ("k", "top_k", "topk", "n", "limit", "num_results", "max_results")
_PIECE = "dspex.retriever"


@overload
def retriever(function: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def retriever(
    *,
    name: str | None = None,
    query: str | None = None,
    k: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def retriever(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    query: str | None = None,
    k: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each call of a search function (or method, sync or ``async``) as a
    ``retrieval`` event, inside ``dspex.experiment`` or wherever dspex records::

        @dspex.retriever
        def search(query: str, k: int = 3) -> list[dict]: ...

        @dspex.retriever(name="web search", settings={"endpoint": URL, "api_key": KEY})
        async def web(q: str, top_k: int = 5) -> list[dict]: ...

    ``name`` names the retriever (default: the function's qualified name); ``query`` and
    ``k`` name its parameters (default: the first parameter, and the first of ``k``,
    ``top_k``, ``n``, ``limit``...); ``settings`` are recorded with each call, as are the
    call's other arguments and, for a method, the instance's public attributes, all with
    their secrets hidden (``api_key``, a URL's password). The return value, unchanged, is
    read by :func:`passages_of`. Outside a recorded run the function runs untouched.
    """

    def decorate(target: Callable[P, R]) -> Callable[P, R]:
        return cast(Callable[P, R], _Marked(target, name, query, k, settings).wrapper())

    return decorate if function is None else decorate(function)


class _Marked:
    """A function marked with :func:`retriever`: how its calls are read."""

    def __init__(
        self,
        function: Callable[..., Any],
        name: str | None,
        query: str | None,
        k: str | None,
        settings: Mapping[str, Any] | None,
    ) -> None:
        self.function = function
        self.name = name or qualified_name(function)
        self.settings = dict(settings or {})
        self.signature = inspect.signature(function)
        names = list(self.signature.parameters)
        self.method = bool(names) and names[0] in ("self", "cls")
        own = names[1:] if self.method else names
        self.query = query or (own[0] if own else None)
        self.k = k or next((n for n in _K_NAMES if n in names), None)

    def wrapper(self) -> Callable[..., Any]:
        function = self.function
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def arecorded(*args: Any, **kwargs: Any) -> Any:
                call = self.begin(args, kwargs)
                if call is None:
                    return await function(*args, **kwargs)
                return self.end(call, await self.attempt(call, function(*args, **kwargs)))

            return arecorded

        @functools.wraps(function)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            call = self.begin(args, kwargs)
            if call is None:
                return function(*args, **kwargs)
            try:
                found = function(*args, **kwargs)
            except BaseException as exc:
                self.fail(call, exc)
                raise
            return self.end(call, found)

        return recorded

    async def attempt(self, call: tuple[Retrieval, int], awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except BaseException as exc:
            self.fail(call, exc)
            raise

    def begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Retrieval, int] | None:
        if is_degraded(_PIECE):
            return None
        place = where(self.function)
        if place is None:
            return None
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            settings: dict[str, Any] = {}
            if self.method and arguments:
                settings.update(instance_settings(arguments.pop(next(iter(arguments)))))
            query = arguments.pop(self.query, None) if self.query else None
            k = arguments.get(self.k) if self.k else None
            settings.update(self.settings)
            settings.update({n: v for n, v in arguments.items() if n != self.k})
            if self.k:
                settings[self.k] = k
            queries = list(query) if isinstance(query, list | tuple) else [query]
            retrieval = begin_retrieval(place, _PIECE, self.name, queries, k, settings)
        except Exception as exc:  # noqa: BLE001 - recording must never break the search
            done(place)
            degrade(_PIECE, exc)
            return None
        return retrieval, len(queries)

    @staticmethod
    def end(call: tuple[Retrieval, int], found: Any) -> Any:
        retrieval, queries = call
        try:
            results = results_of(found, queries)
        except Exception as exc:  # noqa: BLE001
            retrieval.end(None)
            degrade(_PIECE, exc)
            return found
        retrieval.end(results)
        return found

    @staticmethod
    def fail(call: tuple[Retrieval, int], exc: BaseException) -> None:
        try:
            call[0].end(None, exc)
        except Exception as failure:  # noqa: BLE001 - the user's exception goes on
            degrade(_PIECE, failure)


@contextmanager
def retrieval(
    name: str,
    query: Any,
    *,
    k: int | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Iterator[Found]:
    """Record the code inside the block as one retrieval of ``query`` by ``name``; hand
    what it found to the handle's :meth:`Found.returned`::

        with dspex.retrieval("bm25", question, k=5, settings={"index": "wiki"}) as found:
            hits = found.returned(bm25.search(question, 5))

    ``query`` may be a list of queries (then ``returned`` takes one result per query). An
    exception in the block is recorded as the retrieval's error, and propagates.
    """
    handle = Found()
    place = None if is_degraded(_PIECE) else where(name)
    if place is None:
        yield handle
        return
    queries = list(query) if isinstance(query, list | tuple) else [query]
    try:
        call = begin_retrieval(place, _PIECE, name, queries, k, settings or {})
    except Exception as exc:  # noqa: BLE001 - recording must never break the block
        done(place)
        degrade(_PIECE, exc)
        yield handle
        return
    try:
        yield handle
    except BaseException as exc:
        _Marked.fail((call, len(queries)), exc)
        raise
    _Marked.end((call, len(queries)), handle.result if handle.set else None)
