"""Retrievals and embedding calls as OpenInference ``RETRIEVER`` and ``EMBEDDING`` spans.

A ``retrieval`` becomes a RETRIEVER span: the query as ``input.value``, each passage as
``retrieval.documents.<i>.document.{id,content,score,metadata}`` (Phoenix lists them as
the span's documents), the passages as ``output.value``. An ``embedding`` becomes an
EMBEDDING span: ``embedding.model_name``, the texts as
``embedding.embeddings.<i>.embedding.text`` (dspex records no vectors), the token counts
as on LM spans. Everything else is under ``dspex.``::

    >>> name, attrs = retrieval_span({"retriever": "dspy.retrievers.embeddings.Embeddings",
    ...     "module": "rag", "queries": ["capital of Peru"], "k": 1,
    ...     "results": [[{"text": "Lima is the capital of Peru.", "id": 1, "score": 0.9}]],
    ...     "settings": {"k": 1}, "latency_ms": 3.0, "error": None})
    >>> name, attrs["openinference.span.kind"], attrs["input.value"]
    ('retrieve Embeddings', 'RETRIEVER', 'capital of Peru')
    >>> attrs["retrieval.documents.0.document.content"], attrs["retrieval.documents.0.document.id"]
    ('Lima is the capital of Peru.', '1')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dspex.export.attributes import SPAN_KIND, dspex_attributes, io_attributes, json_text
from dspex.export.spans import Attributes
from dspex.model.payloads import EmbeddingPayload, RetrievalPayload

__all__ = ["EMBEDDING", "RETRIEVER", "embedding_span", "retrieval_span"]

RETRIEVER, EMBEDDING = "RETRIEVER", "EMBEDDING"

_RETRIEVAL_SHOWN = frozenset({"queries", "results", "latency_ms", "error", "settings"})
_EMBEDDING_SHOWN = frozenset({"model", "texts", "usage", "cost", "latency_ms", "error"})


def _short(path: Any) -> str:
    text = str(path or "")
    return text if "/" in text else (text.rsplit(".", 1)[-1] or "retriever")


def retrieval_span(payload: RetrievalPayload) -> tuple[str, Attributes]:
    """The name and attributes of a ``retrieval``'s span."""
    queries = payload["queries"] if isinstance(payload["queries"], list) else []
    results = payload["results"] if isinstance(payload["results"], list) else []
    attributes: Attributes = {
        SPAN_KIND: RETRIEVER,
        **io_attributes("input", queries[0] if len(queries) == 1 else queries or None),
        **io_attributes("output", results[0] if len(results) == 1 else results or None),
        **dspex_attributes(payload, skip=_RETRIEVAL_SHOWN),
    }
    if isinstance(payload["settings"], dict) and payload["settings"]:
        attributes["dspex.settings"] = json_text(payload["settings"])
    index = 0
    for number, found in enumerate(results):
        for passage in found if isinstance(found, list) else []:
            if not isinstance(passage, dict):
                continue
            attributes.update(_document(index, passage, number if len(results) > 1 else None))
            index += 1
    return f"retrieve {_short(payload['retriever'])}", attributes


def _document(index: int, passage: Mapping[str, Any], query: int | None) -> Attributes:
    prefix = f"retrieval.documents.{index}.document."
    attributes: Attributes = {}
    if passage.get("id") is not None:
        attributes[prefix + "id"] = str(passage["id"])
    text = passage.get("text")
    if text is not None:
        attributes[prefix + "content"] = text if isinstance(text, str) else json_text(text)
    score = passage.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        attributes[prefix + "score"] = float(score)
    metadata = dict(passage.get("metadata") or {})
    if query is not None:
        metadata["query"] = query  # several queries: which one this passage answers
    if metadata:
        attributes[prefix + "metadata"] = json_text(metadata)
    return attributes


def embedding_span(payload: EmbeddingPayload) -> tuple[str, Attributes]:
    """The name and attributes of an ``embedding``'s span."""
    model = str(payload["model"] or "")
    texts = payload["texts"] if isinstance(payload["texts"], list) else []
    attributes: Attributes = {
        SPAN_KIND: EMBEDDING,
        "embedding.model_name": model,
        "gen_ai.operation.name": "embeddings",
        "gen_ai.request.model": model,
        **dspex_attributes(payload, skip=_EMBEDDING_SHOWN),
    }
    for index, text in enumerate(texts):
        attributes[f"embedding.embeddings.{index}.embedding.text"] = str(text)
    if texts:
        attributes.update(io_attributes("input", texts))
    elif payload["purpose"] == "index":
        attributes.update(io_attributes("input", f"index of {payload['inputs']} texts"))
    usage = payload["usage"] if isinstance(payload["usage"], dict) else {}
    prompt, total = usage.get("prompt_tokens"), usage.get("total_tokens")
    if isinstance(prompt, int):
        attributes["llm.token_count.prompt"] = prompt
        attributes["gen_ai.usage.input_tokens"] = prompt
    if isinstance(total, int):
        attributes["llm.token_count.total"] = total
    cost = payload["cost"]
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        attributes["llm.cost.total"] = float(cost)
    what = f"index of {payload['inputs']}" if payload["purpose"] == "index" else "embed"
    return f"{what} {_short(model)}".strip(), attributes
