"""The patches that record DSPy's retrievers and embedders (listed in ``instrument.PATCHES``).

* ``dspy.Embedder.__call__`` / ``acall``: one ``embedding`` event per call, however many
  batches it sends; tokens and cost from LiteLLM's responses (through
  ``_get_litellm``, or the module's ``litellm`` on DSPy 3.2), cache hits from the batches
  that never reached the model (``_compute_embeddings`` not called: DSPy's cache
  answered).
* ``dspy.retrievers.Embeddings.__init__``: building the index, one ``embedding`` event
  (``purpose`` ``index``, the corpus size as ``inputs``).
* ``Embeddings.forward`` (and ``EmbeddingsWithScores.forward``): one ``retrieval`` event
  with the query, ``k``, the passages with their indices and scores. ``Embeddings``
  searches on a thread of its own (``Unbatchify``), which batches the queries of
  concurrent callers into one embedder call: ``_batch_forward`` (on that thread) measures
  that call and hands it, with the scores, to each caller through the result it returns;
  ``Unbatchify.__call__`` (on the caller's thread) picks it up. The embedding is recorded
  once, under the retrieval of the first caller that records, with ``callers``; every
  retrieval of the batch says ``batched``.
* ``dspy.Retrieve.forward``: the query, ``k`` and the passages (``dspy.Retrieve`` is
  reported to callbacks as a module; the retrieval sits under it).
* ``dspy.ColBERTv2.__call__``: the query, ``k`` and the passages with ``pid`` and score.

Each replacement calls DSPy's original with the arguments it received and returns what it
returned; outside a recorded run it does nothing else.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Sized
from contextvars import ContextVar
from typing import Any, Final

from dspex.capture.retrieval import (
    EmbeddingCall,
    Retrieval,
    begin_retrieval,
    degrade,
    done,
    emit_embedding,
    is_degraded,
    passages_of,
    qualified_name,
    restore,
    where,
)
from dspex.model.event import EventKind
from dspex.model.payloads import EmbeddingPayload, Passage
from dspex.redact import redact_url

__all__ = [
    "colbert_call",
    "compute_embeddings",
    "embedder_acall",
    "embedder_call",
    "embeddings_batch_forward",
    "embeddings_forward",
    "embeddings_init",
    "litellm_getter",
    "litellm_module",
    "retrieve_forward",
    "unbatchify_call",
]

Original = Callable[..., Any]
_EMBEDDING_KIND: Final = EventKind.EMBEDDING

# The embedding call running here (dspy.Embedder's): its batches and responses count into it.
_measuring: ContextVar[EmbeddingCall | None] = ContextVar("dspex_embedding_call", default=None)
# An Embeddings step running here (its index build, a batch of queries): the embedder's
# measures go to it, and it records one event.
_sink: ContextVar[list[EmbeddingCall] | None] = ContextVar("dspex_embedding_sink", default=None)
# A caller of Embeddings.forward: the raw results its Unbatchify call returned.
_searches: ContextVar[list[Any] | None] = ContextVar("dspex_searches", default=None)


def _replacement(piece: str, build: Callable[[Original], Any]) -> Callable[[Original], Any]:
    """A patch's ``replace``: a fresh application records again after a degraded run."""

    def replace(original: Original) -> Any:
        if not callable(original):
            raise TypeError(f"{original!r} is not callable")
        restore(piece)
        return functools.wraps(original)(build(original))

    return replace


# -- dspy.Embedder ------------------------------------------------------------------------

EMBEDDER = "dspy.Embedder"


def _count(inputs: Any) -> tuple[int, list[str]]:
    if isinstance(inputs, str):
        return 1, [inputs]
    try:
        texts = list(inputs)
    except TypeError:
        return 0, []
    return len(texts), [t for t in texts[:16] if isinstance(t, str)]


def _start_embedding(embedder: Any, inputs: Any, batch_size: Any, caching: Any) -> EmbeddingCall:
    count, texts = _count(inputs)
    size = batch_size or getattr(embedder, "batch_size", None)
    size = size if isinstance(size, int) and size > 0 else None
    cached = caching if caching is not None else getattr(embedder, "caching", None)
    call = EmbeddingCall(
        model=qualified_name(getattr(embedder, "model", embedder)),
        embedder=qualified_name(embedder),
        inputs=count,
        texts=texts,
        batch_size=size,
        batches=math.ceil(count / size) if size else None,
    )
    # each batch that reaches the model counts itself (compute_embeddings): the others
    # came from DSPy's cache; without caching every batch reaches it
    call.computed = 0 if cached else None
    return call


def _finish_embedding(call: EmbeddingCall, result: Any, started: float, error: Any) -> None:
    call.latency_ms = (time.perf_counter() - started) * 1000
    call.error = error
    if call.computed is None:
        call.computed = call.batches
    shape = getattr(result, "shape", None)
    if isinstance(shape, tuple) and shape:
        call.dimensions = int(shape[-1])


class _Embedding:
    """One ``dspy.Embedder`` call while it runs: reported to the Embeddings step around
    it, or recorded as its own event."""

    __slots__ = ("call", "sink", "place", "token", "started")

    def __init__(self, call: EmbeddingCall, sink: list[EmbeddingCall] | None, place: Any) -> None:
        self.call = call
        self.sink = sink
        self.place = place
        self.token = _measuring.set(call)
        self.started = time.perf_counter()

    @staticmethod
    def open(embedder: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Embedding | None:
        """The recording of this call, or None: nothing records it (or recording failed)."""
        if is_degraded(EMBEDDER):
            return None
        sink = _sink.get()
        place = where(embedder) if sink is None else None
        if sink is None and place is None:
            return None
        try:
            inputs = args[0] if args else kwargs.get("inputs")
            batch_size = args[1] if len(args) > 1 else kwargs.get("batch_size")
            caching = args[2] if len(args) > 2 else kwargs.get("caching")
            call = _start_embedding(embedder, inputs, batch_size, caching)
        except Exception as exc:  # noqa: BLE001 - recording must never break the call
            if place is not None:
                done(place)
            degrade(EMBEDDER, exc)
            return None
        return _Embedding(call, sink, place)

    def close(self, result: Any, error: BaseException | None) -> None:
        try:
            _measuring.reset(self.token)
        except ValueError:  # closed in another context
            pass
        try:
            _finish_embedding(self.call, result, self.started, error)
            if self.sink is not None:
                self.sink.append(self.call)
                return
            payload = self.call.payload(module=self.place.module, purpose="call", retriever=None)
        except Exception as exc:  # noqa: BLE001
            if self.place is not None:
                done(self.place)
            degrade(EMBEDDER, exc)
            return
        try:
            emit_embedding(self.place, payload)
        except Exception as exc:  # noqa: BLE001
            degrade(EMBEDDER, exc)


def _embedder_call(original: Original) -> Callable[..., Any]:
    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        recording = _Embedding.open(self, args, kwargs)
        if recording is None:
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            recording.close(None, exc)
            raise
        recording.close(result, None)
        return result

    return __call__


def _embedder_acall(original: Original) -> Callable[..., Any]:
    async def acall(self: Any, *args: Any, **kwargs: Any) -> Any:
        recording = _Embedding.open(self, args, kwargs)
        if recording is None:
            return await original(self, *args, **kwargs)
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            recording.close(None, exc)
            raise
        recording.close(result, None)
        return result

    return acall


embedder_call = _replacement(EMBEDDER, _embedder_call)
embedder_acall = _replacement(EMBEDDER, _embedder_acall)


def _counted(original: Original) -> Callable[..., Any]:
    def compute(*args: Any, **kwargs: Any) -> Any:
        call = _measuring.get()
        if call is not None and call.computed is not None:
            call.computed += 1
        return original(*args, **kwargs)

    return compute


def _acounted(original: Original) -> Callable[..., Any]:
    async def acompute(*args: Any, **kwargs: Any) -> Any:
        call = _measuring.get()
        if call is not None and call.computed is not None:
            call.computed += 1
        return await original(*args, **kwargs)

    return acompute


compute_embeddings = _replacement(EMBEDDER, _counted)
acompute_embeddings = _replacement(EMBEDDER, _acounted)


class _CountingLiteLLM:
    """LiteLLM as ``dspy.Embedder`` sees it while a call is measured: its responses'
    usage, cost and cache hit counted into the call; everything else is LiteLLM's."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def embedding(self, *args: Any, **kwargs: Any) -> Any:
        response = self._module.embedding(*args, **kwargs)
        _count_response(response)
        return response

    async def aembedding(self, *args: Any, **kwargs: Any) -> Any:
        response = await self._module.aembedding(*args, **kwargs)
        _count_response(response)
        return response


def _count_response(response: Any) -> None:
    call = _measuring.get()
    if call is None:
        return
    try:
        call.count_response(response)
    except Exception as exc:  # noqa: BLE001 - recording must never break the call
        degrade(EMBEDDER, exc)


def _getter(original: Original) -> Callable[..., Any]:
    def get_litellm(*args: Any, **kwargs: Any) -> Any:
        module = original(*args, **kwargs)
        return _CountingLiteLLM(module) if _measuring.get() is not None else module

    return get_litellm


litellm_getter = _replacement(EMBEDDER, _getter)


def litellm_module(module: Any) -> Any:
    """DSPy 3.2 reads ``litellm`` from its embedding module's globals: a counting view."""
    if not hasattr(module, "embedding"):
        raise TypeError(f"{module!r} is not LiteLLM")
    return _CountingLiteLLM(module)


# -- dspy.retrievers.Embeddings -------------------------------------------------------------

EMBEDDINGS = "dspy.retrievers.Embeddings"


def _embeddings_settings(retriever: Any) -> dict[str, Any]:
    corpus = getattr(retriever, "corpus", None)
    embedder = getattr(retriever, "embedder", None)
    return {
        "k": getattr(retriever, "k", None),
        "normalize": getattr(retriever, "normalize", None),
        "corpus_size": len(corpus) if isinstance(corpus, Sized) else None,
        "index": "faiss" if getattr(retriever, "index", None) is not None else "brute force",
        "embedder": qualified_name(getattr(embedder, "model", embedder)) if embedder else None,
    }


def _step_payload(
    reported: list[EmbeddingCall],
    embedder: Any,
    inputs: Any,
    *,
    module: str | None,
    purpose: str,
    retriever: str,
    latency_ms: float | None,
    error: BaseException | None,
) -> EmbeddingPayload:
    """One event for an Embeddings step: what ``dspy.Embedder`` reported, or, for a plain
    function (which nothing times), what the step knows."""
    if reported:
        call = reported[0]
        for more in reported[1:]:  # an embedder called twice in one step: one event still
            call.inputs += more.inputs
            call.batches = (call.batches or 0) + (more.batches or 0)
            call.computed = (call.computed or 0) + (more.computed or 0)
    else:
        count, texts = _count(inputs)
        call = EmbeddingCall(
            model=qualified_name(embedder), embedder="function", inputs=count, texts=texts
        )
        call.error = error
    if purpose == "index":
        call.latency_ms = latency_ms  # the whole build, its embedding included
    return call.payload(module=module, purpose=purpose, retriever=retriever)


def _init(original: Original) -> Callable[..., Any]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if is_degraded(EMBEDDINGS):
            original(self, *args, **kwargs)
            return
        place = where(self)
        if place is None:
            original(self, *args, **kwargs)
            return
        reported: list[EmbeddingCall] = []
        token = _sink.set(reported)
        started, error = time.perf_counter(), None
        try:
            original(self, *args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            _sink.reset(token)
            latency = (time.perf_counter() - started) * 1000
            try:
                emit_embedding(
                    place,
                    _step_payload(
                        reported,
                        getattr(self, "embedder", None),
                        getattr(self, "corpus", ()),
                        module=place.module,
                        purpose="index",
                        retriever=qualified_name(self),
                        latency_ms=latency,
                        error=error,
                    ),
                )
            except Exception as failure:  # noqa: BLE001
                degrade(EMBEDDINGS, failure)

    return __init__


embeddings_init = _replacement(EMBEDDINGS, _init)


class _Searched(tuple[Any, ...]):
    """One query's ``(passages, indices, scores)`` from ``_batch_forward``, carrying the
    batch it was searched in to the caller (through DSPy's Unbatchify, unchanged)."""

    batch: _Batch


class _Batch:
    """A batch of queries searched together: the one embedder call made for all of them,
    recorded once (``claim``), by the first caller that records."""

    __slots__ = ("size", "payload", "_lock")

    def __init__(self, size: int, payload: EmbeddingPayload | None) -> None:
        self.size = size
        self.payload = payload
        self._lock = threading.Lock()

    def claim(self) -> EmbeddingPayload | None:
        with self._lock:
            payload, self.payload = self.payload, None
        return payload


def _batch_forward(original: Original) -> Callable[..., Any]:
    def batch_forward(self: Any, queries: Any, *args: Any, **kwargs: Any) -> Any:
        if is_degraded(EMBEDDINGS):
            return original(self, queries, *args, **kwargs)
        reported: list[EmbeddingCall] = []
        token = _sink.set(reported)
        try:
            results = original(self, queries, *args, **kwargs)
        except BaseException as exc:
            _sink.reset(token)
            _attach(exc, self, queries, reported)
            raise
        _sink.reset(token)
        try:
            batch = _Batch(len(queries), _query_payload(self, queries, reported, None))
            searched = []
            for found in results:
                if not (isinstance(found, tuple) and len(found) == 3):
                    return results  # another shape than DSPy's: left as it is
                one = _Searched(found)
                one.batch = batch
                searched.append(one)
        except Exception as exc:  # noqa: BLE001
            degrade(EMBEDDINGS, exc)
            return results
        return type(results)(searched) if isinstance(results, list) else results

    return batch_forward


def _query_payload(
    retriever: Any, queries: Any, reported: list[EmbeddingCall], error: BaseException | None
) -> EmbeddingPayload:
    payload = _step_payload(
        reported,
        getattr(retriever, "embedder", None),
        queries,
        module=None,  # the caller's module, set when it records
        purpose="query",
        retriever=qualified_name(retriever),
        latency_ms=None,
        error=error,
    )
    payload["callers"] = len(queries)
    return payload


def _attach(exc: BaseException, retriever: Any, queries: Any, reported: list[Any]) -> None:
    """A batch that failed: its embedding call travels to the callers with the error."""
    try:
        exc.__dict__["_dspex_batch"] = _Batch(
            len(queries), _query_payload(retriever, queries, reported, exc)
        )
    except Exception:  # noqa: BLE001 - not recorded then; the error goes on unchanged
        pass


embeddings_batch_forward = _replacement(EMBEDDINGS, _batch_forward)


def _rebind_batch_fn(unbatchify: Any) -> None:
    """An ``Embeddings`` built before dspex patched DSPy bound the original
    ``_batch_forward`` into its Unbatchify (``Unbatchify(self._batch_forward)``): point it
    at the patched one, so that a retriever built at import time, outside any experiment,
    records its query embeddings and scores like one built inside."""
    bound = getattr(unbatchify, "batch_fn", None)
    owner = getattr(bound, "__self__", None)
    if owner is None or id(getattr(owner, "search_fn", None)) != id(unbatchify):
        return  # not the Unbatchify of an Embeddings
    current = getattr(type(owner), "_batch_forward", None)
    if current is not None and getattr(bound, "__func__", None) is not current:
        unbatchify.batch_fn = owner._batch_forward


def _unbatchify_call(original: Original) -> Callable[..., Any]:
    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _searches.get() is not None:  # an Embeddings search being recorded
            try:
                _rebind_batch_fn(self)
            except Exception as exc:  # noqa: BLE001 - its query embeddings go unrecorded
                degrade(EMBEDDINGS, exc)
        result = original(self, *args, **kwargs)
        slot = _searches.get()
        if slot is not None:
            slot.append(result)
        return result

    return __call__


unbatchify_call = _replacement(EMBEDDINGS, _unbatchify_call)


def _forward(original: Original) -> Callable[..., Any]:
    def forward(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if is_degraded(EMBEDDINGS):
            return original(self, query, *args, **kwargs)
        place = where(self)
        if place is None:
            return original(self, query, *args, **kwargs)
        try:
            retrieval = begin_retrieval(
                place, EMBEDDINGS, qualified_name(self), [query], getattr(self, "k", None),
                _embeddings_settings(self),
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            done(place)
            degrade(EMBEDDINGS, exc)
            return original(self, query, *args, **kwargs)
        slot: list[Any] = []
        token = _searches.set(slot)
        try:
            found = original(self, query, *args, **kwargs)
        except BaseException as exc:
            _searches.reset(token)
            _end_search(retrieval, None, getattr(exc, "_dspex_batch", None), exc)
            raise
        _searches.reset(token)
        searched = slot[-1] if slot else None
        _end_search(retrieval, found, getattr(searched, "batch", None), None, searched)
        return found

    return forward


def _end_search(
    retrieval: Retrieval,
    found: Any,
    batch: _Batch | None,
    error: BaseException | None,
    searched: Any = None,
) -> None:
    try:
        extra: dict[str, Any] = {}
        if batch is not None:
            extra["batched"] = batch.size
            payload = batch.claim()
            if payload is not None:
                payload["module"] = retrieval.place.module
                retrieval.place.recorder.emit(
                    _EMBEDDING_KIND, payload, parent_id=retrieval.event_id, json_ready=True
                )
        results = None if error is not None else [_searched_passages(searched, found)]
        retrieval.end(results, error, **extra)
    except Exception as exc:  # noqa: BLE001 - the caller's result (or error) goes on
        degrade(EMBEDDINGS, exc)


def _searched_passages(searched: Any, found: Any) -> list[Passage]:
    """The passages with indices and scores as searched (what ``Embeddings.forward``
    returns has no scores), else as returned."""
    if isinstance(searched, tuple) and len(searched) == 3:
        texts, indices, scores = searched
        return passages_of({"passages": texts, "indices": indices, "scores": scores})
    return passages_of(found)


embeddings_forward = _replacement(EMBEDDINGS, _forward)


# -- dspy.Retrieve and dspy.ColBERTv2 ---------------------------------------------------------

RETRIEVE = "dspy.Retrieve"
COLBERT = "dspy.ColBERTv2"


def _retrieve_forward(original: Original) -> Callable[..., Any]:
    def forward(self: Any, query: Any, k: Any = None, *args: Any, **kwargs: Any) -> Any:
        def settings() -> dict[str, Any]:
            import dspy

            rm = dspy.settings.rm
            return {"k": getattr(self, "k", None), "rm": qualified_name(rm) if rm else None}

        effective = k if k is not None else getattr(self, "k", None)
        return _recorded(
            RETRIEVE, self, original, (self, query, k, *args), kwargs, query, effective, settings
        )

    return forward


def _colbert_call(original: Original) -> Callable[..., Any]:
    def __call__(self: Any, query: Any, k: Any = 10, *args: Any, **kwargs: Any) -> Any:
        def settings() -> dict[str, Any]:
            url = getattr(self, "url", None)
            return {
                "url": redact_url(url) if isinstance(url, str) else url,
                "post_requests": getattr(self, "post_requests", None),
            }

        return _recorded(
            COLBERT, self, original, (self, query, k, *args), kwargs, query, k, settings
        )

    return __call__


def _recorded(
    piece: str,
    instance: Any,
    original: Original,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    query: Any,
    k: Any,
    settings: Callable[[], dict[str, Any]],
) -> Any:
    """``original(*args, **kwargs)``, recorded as one retrieval of ``query``."""
    if is_degraded(piece):
        return original(*args, **kwargs)
    place = where(instance)
    if place is None:
        return original(*args, **kwargs)
    queries = list(query) if isinstance(query, list | tuple) else [query]
    try:
        retrieval = begin_retrieval(place, piece, qualified_name(instance), queries, k, settings())
    except Exception as exc:  # noqa: BLE001
        done(place)
        degrade(piece, exc)
        return original(*args, **kwargs)
    try:
        found = original(*args, **kwargs)
    except BaseException as exc:
        _end(retrieval, piece, None, exc)
        raise
    _end(retrieval, piece, found, None)
    return found


def _end(retrieval: Retrieval, piece: str, found: Any, error: BaseException | None) -> None:
    try:
        retrieval.end(None if error is not None else [passages_of(found)], error)
    except Exception as exc:  # noqa: BLE001
        degrade(piece, exc)


retrieve_forward = _replacement(RETRIEVE, _retrieve_forward)
colbert_call = _replacement(COLBERT, _colbert_call)
