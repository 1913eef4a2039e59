"""What a trial's retrievals and embedding calls look like in every view, as plain data.

A ``retrieval`` event reads as a query and its ranked passages (:func:`retrieval_view`):
the first :data:`PASSAGES_SHOWN` open, the rest folded, each passage abridged to
:data:`PASSAGE_CHARS` characters at a word boundary (the full text stays one click away;
renderers escape both). A trial's retrievals and embedding calls add up to a
:class:`RagStats` (counts, latency, tokens, cost); two trials' retrievals, example by
example, to a :class:`RetrievalDiff` ("B retrieved different passages for 3 examples")::

    >>> abridge("one two three four", 9)
    ('one two …', True)
    >>> rag_stats(()) is None
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dspex.model import EventKind, TraceEvent, Trial, example_key
from dspex.model.payloads import EmbeddingPayload, RetrievalPayload, payload_of
from dspex.model.stats import percentile
from dspex.view.ordering import tree_order

__all__ = [
    "PASSAGES_SHOWN",
    "PASSAGE_CHARS",
    "ExampleRetrievals",
    "QueryResult",
    "RagStats",
    "RetrievalDiff",
    "RetrievalView",
    "ShownPassage",
    "abridge",
    "embedding_label",
    "embedding_summary",
    "rag_stats",
    "retrieval_diff",
    "retrieval_label",
    "retrieval_view",
    "short_name",
    "trials_rag_stats",
    "view_of",
]

PASSAGES_SHOWN = 3
"""Passages shown open per query; the others are folded behind "N more passages"."""
PASSAGE_CHARS = 280
"""A passage longer than this is abridged (at a word boundary) with its full text folded."""


def abridge(text: str, limit: int = PASSAGE_CHARS) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` characters (at the last space, when there is one
    in its second half) with ``…``; and whether it was cut. Cut before escaping: an
    escaped text cut in the middle of ``&amp;`` would break."""
    text = " ".join(text.split()) if "\n" in text or "\r" in text else text
    if len(text) <= limit:
        return text, False
    cut = text[: max(limit - 1, 1)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + " …", True


def short_name(path: str | None) -> str:
    """``dspy.retrievers.embeddings.Embeddings`` -> ``Embeddings``; a model name as it is."""
    if not path:
        return "?"
    if "/" in path:
        return path
    return path.rsplit(".", 1)[-1] or path


@dataclass(frozen=True)
class ShownPassage:
    rank: int
    """1 for the first passage the retriever returned."""
    text: str
    """Abridged to :data:`PASSAGE_CHARS`."""
    full: str
    """As recorded (folded by renderers when :attr:`abridged`)."""
    id: str
    score: float | None
    abridged: bool = False

    @property
    def score_text(self) -> str:
        return "" if self.score is None else f"{self.score:.3f}"


@dataclass(frozen=True)
class QueryResult:
    query: str
    passages: tuple[ShownPassage, ...]

    @property
    def first(self) -> tuple[ShownPassage, ...]:
        return self.passages[:PASSAGES_SHOWN]

    @property
    def rest(self) -> tuple[ShownPassage, ...]:
        return self.passages[PASSAGES_SHOWN:]


@dataclass(frozen=True)
class RetrievalView:
    """One retrieval as the timeline shows it."""

    retriever: str
    module: str | None
    k: int | None
    latency_ms: float | None
    results: tuple[QueryResult, ...]
    batched: int | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return short_name(self.retriever)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _passages(found: Any) -> tuple[ShownPassage, ...]:
    shown = []
    for rank, passage in enumerate(found if isinstance(found, list) else [], start=1):
        if not isinstance(passage, dict):
            passage = {"text": passage}
        full = _text(passage.get("text"))
        text, cut = abridge(full)
        score = passage.get("score")
        number = float(score) if isinstance(score, int | float) else None
        shown.append(ShownPassage(rank, text, full, _text(passage.get("id")), number, cut))
    return tuple(shown)


def retrieval_view(event: TraceEvent) -> RetrievalView | None:
    """``event`` (a ``retrieval``) as shown; None for another kind."""
    p = payload_of(event, EventKind.RETRIEVAL)
    return None if p is None else view_of(p)


def view_of(p: RetrievalPayload) -> RetrievalView:
    """A ``retrieval`` payload as shown."""
    queries = p["queries"] if isinstance(p["queries"], list) else []
    results = p["results"] if isinstance(p["results"], list) else []
    shown = tuple(
        QueryResult(_text(queries[i]) if i < len(queries) else "", _passages(found))
        for i, found in enumerate(results)
    ) or tuple(QueryResult(_text(q), ()) for q in queries)
    error = p["error"]
    return RetrievalView(
        retriever=_text(p["retriever"]),
        module=p["module"],
        k=p["k"],
        latency_ms=p["latency_ms"],
        results=shown,
        batched=p["batched"] if "batched" in p else None,
        error=f"{error.get('type')}: {error.get('message')}" if isinstance(error, dict) else None,
    )


def retrieval_label(p: RetrievalPayload) -> str:
    """``retrieve Embeddings k=3`` (the waterfall's row label)."""
    k = f" k={p['k']}" if p["k"] is not None else ""
    return f"retrieve {short_name(p['retriever'])}{k}"


def embedding_label(p: EmbeddingPayload) -> str:
    """``embed index of 24 texts``, ``embed 1 text`` (the waterfall's row label)."""
    count = p["inputs"] if isinstance(p["inputs"], int) else 0
    texts = f"{count} text{'s' if count != 1 else ''}"
    what = f"index of {texts}" if p["purpose"] == "index" else texts
    hits = " (cache hit)" if p["cache_hits"] and p["cache_hits"] == p["batches"] else ""
    return f"embed {what}{hits}"


def embedding_summary(event: TraceEvent) -> str:
    """``64 dims · 2 batches (1 from cache) · 120 tokens · 3.1 ms`` (a folded entry's line)."""
    p = payload_of(event, EventKind.EMBEDDING)
    if p is None:
        return ""
    parts = [short_name(p["model"])]
    if p["dimensions"]:
        parts.append(f"{p['dimensions']} dims")
    if p["batches"]:
        hits = f" ({p['cache_hits']} from cache)" if p["cache_hits"] else ""
        parts.append(f"{p['batches']} batch{'es' if p['batches'] != 1 else ''}{hits}")
    usage = p["usage"] if isinstance(p["usage"], dict) else {}
    if usage.get("total_tokens"):
        parts.append(f"{usage['total_tokens']} tokens")
    if isinstance(p["latency_ms"], int | float):
        latency = p["latency_ms"]
        parts.append(f"{latency:.1f} ms" if latency < 1000 else f"{latency / 1000:.2f} s")
    return " · ".join(parts)


# -- a trial's totals -------------------------------------------------------------------------


@dataclass(frozen=True)
class RagStats:
    """A trial's (or several trials') retrievals and embedding calls."""

    retrievals: int
    """Retrievals the program made (one made inside another, the rm of ``dspy.Retrieve``,
    is part of it and not counted again)."""
    failed: int
    latencies: tuple[float, ...]
    embedding_calls: int
    index_builds: int
    texts_embedded: int
    embedding_tokens: int
    embedding_cost: float
    cache_hits: int
    """Embedder batches a cache answered."""

    @property
    def latency_p50(self) -> float | None:
        return percentile(self.latencies, 50) if self.latencies else None

    @property
    def latency_p95(self) -> float | None:
        return percentile(self.latencies, 95) if self.latencies else None

    def __add__(self, other: RagStats) -> RagStats:
        return RagStats(
            self.retrievals + other.retrievals,
            self.failed + other.failed,
            self.latencies + other.latencies,
            self.embedding_calls + other.embedding_calls,
            self.index_builds + other.index_builds,
            self.texts_embedded + other.texts_embedded,
            self.embedding_tokens + other.embedding_tokens,
            self.embedding_cost + other.embedding_cost,
            self.cache_hits + other.cache_hits,
        )


def _nested_in_retrieval(event: TraceEvent, by_id: dict[str, TraceEvent]) -> bool:
    parent = by_id.get(event.parent_id) if event.parent_id is not None else None
    return parent is not None and parent.kind is EventKind.RETRIEVAL


def rag_stats(events: Iterable[TraceEvent]) -> RagStats | None:
    """The totals of ``events`` (one trial's); None when it made no retrieval and no
    embedding call."""
    events = list(events)
    by_id = {e.id: e for e in events}
    retrievals = failed = calls = builds = texts = tokens = hits = 0
    cost = 0.0
    latencies: list[float] = []
    for event in events:
        r = payload_of(event, EventKind.RETRIEVAL)
        if r is not None and not _nested_in_retrieval(event, by_id):
            retrievals += 1
            failed += bool(r["error"])
            if isinstance(r["latency_ms"], int | float):
                latencies.append(float(r["latency_ms"]))
        e = payload_of(event, EventKind.EMBEDDING)
        if e is not None:
            calls += 1
            builds += e["purpose"] == "index"
            texts += e["inputs"] if isinstance(e["inputs"], int) else 0
            usage = e["usage"] if isinstance(e["usage"], dict) else {}
            tokens += int(usage.get("total_tokens") or usage.get("prompt_tokens") or 0)
            cost += float(e["cost"]) if isinstance(e["cost"], int | float) else 0.0
            hits += e["cache_hits"] if isinstance(e["cache_hits"], int) else 0
    if not retrievals and not calls:
        return None
    return RagStats(retrievals, failed, tuple(latencies), calls, builds, texts, tokens, cost, hits)


def trials_rag_stats(trials: Iterable[Trial]) -> RagStats | None:
    """The totals over several trials (an experiment's)."""
    total: RagStats | None = None
    for trial in trials:
        stats = rag_stats(trial.events)
        if stats is not None:
            total = stats if total is None else total + stats
    return total


# -- two trials' retrievals, example by example ------------------------------------------------


@dataclass(frozen=True)
class ExampleRetrievals:
    """What one example's run retrieved: per retrieval, its queries and passage ids."""

    index: int
    key: str
    queries: tuple[str, ...]
    found: tuple[tuple[str, ...], ...]
    """Per retrieval, the ids (or, without ids, the texts) of its passages, in rank order."""


def _example_retrievals(trial: Trial) -> dict[str, ExampleRetrievals]:
    """By example key: the top-level retrievals in each example's run (an example's run is
    its call tree, kept whole with its result by :func:`dspex.view.ordering.tree_order`)."""
    groups: dict[str, list[TraceEvent]] = {}
    for event, group in tree_order(trial.events):
        groups.setdefault(group, []).append(event)
    by_id = {e.id: e for e in trial.events}
    found: dict[str, ExampleRetrievals] = {}
    for events in groups.values():
        results = (payload_of(e, EventKind.EXAMPLE_RESULT) for e in events)
        result = next((r for r in results if r is not None), None)
        if result is None or not isinstance(result["example"], int):
            continue
        top = (e for e in events if not _nested_in_retrieval(e, by_id))
        retrievals = [r for r in (payload_of(e, EventKind.RETRIEVAL) for e in top) if r]
        if not retrievals:
            continue
        key = example_key(result["inputs"] or {}, result["labels"] or {})
        found[key] = ExampleRetrievals(
            index=result["example"],
            key=key,
            queries=tuple(_text(q) for r in retrievals for q in (r["queries"] or [])),
            found=tuple(_ids(r) for r in retrievals),
        )
    return found


def _ids(p: RetrievalPayload) -> tuple[str, ...]:
    ids: list[str] = []
    for one in p["results"] if isinstance(p["results"], list) else []:
        for passage in one if isinstance(one, list) else []:
            if isinstance(passage, dict):
                pid = passage.get("id")
                ids.append(_text(pid) if pid is not None else "text:" + _text(passage.get("text")))
    return tuple(ids)


@dataclass(frozen=True)
class RetrievalDiff:
    """The examples both trials ran with retrievals, and those where B found other passages."""

    compared: int
    differ: tuple[tuple[ExampleRetrievals, ExampleRetrievals], ...]
    """(A's, B's) for each example whose passages differ, in A's example order."""

    def describe(self, b: str = "B") -> str:
        """``B retrieved different passages for 3 of 10 examples: #2, #5, #7``."""
        if not self.differ:
            return f"{b} retrieved the same passages for all {self.compared} examples"
        shown = ", ".join(f"#{a.index}" for a, _ in self.differ[:12])
        more = f" and {len(self.differ) - 12} more" if len(self.differ) > 12 else ""
        return (
            f"{b} retrieved different passages for {len(self.differ)} of {self.compared} "
            f"example{'s' if self.compared != 1 else ''}: {shown}{more}"
        )


def retrieval_diff(a: Trial, b: Trial) -> RetrievalDiff | None:
    """Example by example (matched by inputs and labels), whether ``b`` retrieved other
    passages than ``a``; None when they share no example run with retrievals."""
    mine, theirs = _example_retrievals(a), _example_retrievals(b)
    shared = [key for key in mine if key in theirs]
    if not shared:
        return None
    differ = tuple(
        (mine[key], theirs[key])
        for key in sorted(shared, key=lambda k: mine[k].index)
        if mine[key].found != theirs[key].found
    )
    return RetrievalDiff(len(shared), differ)


def passage_lines(view: RetrievalView, *, limit: int | None = None) -> list[str]:
    """``query → …`` then ``1. 0.812  #4  Paris is …`` per passage: the text renderers'."""
    lines: list[str] = []
    for result in view.results:
        lines.append(f"query: {result.query}")
        shown: Sequence[ShownPassage] = result.passages if limit is None else result.first
        for passage in shown:
            score = f"{passage.score_text}  " if passage.score_text else ""
            pid = f"#{passage.id}  " if passage.id else ""
            lines.append(f"  {passage.rank}. {score}{pid}{passage.text}")
        if limit is not None and result.rest:
            lines.append(f"  ... {len(result.rest)} more passages")
        if not result.passages:
            lines.append("  (no passages)")
    return lines
