"""A small offline corpus, a retriever over it and a two-step RAG program, for ``dspex demo
--rag`` and tests: no network, the same answers on every machine.

The corpus is 50 short passages about the people of a fictional harbor town (which
instrument each plays, where each was born, each one's boat and trade, and ten jobs held by
one person each), so that an answer can only come from a retrieved passage. The questions
ask for one fact of one passage: ``load_harbor()`` returns ``(train, dev)``, 18 and 12
``dspy.Example`` objects with ``question`` as the input and ``answer`` as the label (and
``kind``: ``named`` when the question names the person, ``role`` when it asks who holds a
job)::

    >>> train, dev = load_harbor()
    >>> len(CORPUS), len(train), len(dev)
    (50, 18, 12)
    >>> dev[0].question, dev[0].answer
    ('What is the name of the boat Leo Fairweather sails?', 'Curlew')

:func:`harbor_retriever` is a ``dspy.retrievers.Embeddings`` over the corpus with a
``dspy.Embedder`` around :func:`embed`, a local hashed bag of words. :class:`HarborRAG`
writes a search query (``generate_query``, a ``Predict``), retrieves three passages and
answers from them (``answer``, a ``ChainOfThought``).

The offline LM (:mod:`dspex.offline.skills`) writes search queries with one systematic
mistake: without guidance it searches for the topic of the question and leaves out the
names, so a question about one person retrieves the passages of others, and the answer
module answers from the wrong person's passage. A rule in the query module's instructions
that says to keep the names (:data:`RAG_RULES`, or any phrasing
:func:`~dspex.offline.harbor.keeps_names` accepts) fixes it; GEPA's reflection proposes
that rule when the feedback shows the mistake
(:func:`~dspex.offline.harbor.query_mistakes`)::

    >>> import dspy, dspex
    >>> program = HarborRAG()
    >>> with dspy.context(lm=dspex.offline_lm()):
    ...     before = program(question="Where was Hana Moreau born?")
    ...     program.generate_query.signature = program.generate_query.signature.with_instructions(
    ...         RAG_RULES["query"])
    ...     after = program(question="Where was Hana Moreau born?")
    >>> before.search_query, before.answer
    ('born', 'Lagos')
    >>> after.search_query, after.answer
    ('Hana Moreau born', 'Nantes')
"""

from __future__ import annotations

import copy
import threading
import zlib
from typing import Any

import dspy

from dspex.offline.datasets import _normalize, exact_match
from dspex.offline.harbor import CORPUS, RAG_RULES, STOPWORDS, WORD, harbor_rows

__all__ = [
    "CORPUS",
    "DIMENSIONS",
    "RAG_RULES",
    "HarborRAG",
    "embed",
    "harbor_retriever",
    "load_harbor",
    "rag_match",
    "rag_match_with_feedback",
]

DIMENSIONS = 256

# -- the retriever ---------------------------------------------------------------------------


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def embed(texts: list[str]) -> Any:
    """A local embedding: a hashed bag of (lower-cased, plural-stripped) content words.

    Deterministic (crc32) in every process; one row of :data:`DIMENSIONS` floats per text.

    >>> embed(["Mira plays the cello"]).shape
    (1, 256)
    """
    import numpy as np

    rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in WORD.findall(str(text).lower()):
            if word not in STOPWORDS:
                rows[row, zlib.crc32(_stem(word).encode()) % DIMENSIONS] += 1.0
    return rows


def harbor_retriever(k: int = 3, *, embedder: Any = None) -> Any:
    """``dspy.retrievers.Embeddings`` over :data:`CORPUS`, ``k`` passages a query.

    ``embedder``: the embedding function (default :func:`embed`), wrapped in a
    ``dspy.Embedder`` without a cache, so that every call reaches it.
    """
    return dspy.retrievers.Embeddings(
        corpus=CORPUS, embedder=dspy.Embedder(embedder or embed, caching=False), k=k
    )


class _Retriever:
    """The retriever of a program and of all its copies: built at its first search (in the
    trial that makes it, so that the record holds the index build), once."""

    def __init__(self, retriever: Any, embedder: Any) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self.retriever is None:
                self.retriever = harbor_retriever(embedder=self.embedder)
            return self.retriever


class HarborRAG(dspy.Module):  # type: ignore[misc]  # DSPy ships no type information
    """Question → search query → three passages → answer.

    ``generate_query`` is ``dspy.Predict("question -> search_query")`` and ``answer`` is
    ``dspy.ChainOfThought("context, question -> answer")``. ``retriever``: any callable
    returning a prediction with ``passages``; by default :func:`harbor_retriever` over
    ``embedder``, built at the first search. Copies of the program (optimizers copy
    programs) share the retriever, so the index is built once. The prediction carries the
    answer, the search query and the passages (``context``).
    """

    def __init__(self, retriever: Any = None, *, embedder: Any = None) -> None:
        super().__init__()
        self.generate_query = dspy.Predict("question -> search_query")
        self.answer = dspy.ChainOfThought("context, question -> answer")
        self._search = _Retriever(retriever, embedder)

    @property
    def retriever(self) -> Any:
        return self._search.get()

    def forward(self, question: str) -> Any:
        query = self.generate_query(question=question).search_query
        passages = self.retriever(query).passages
        answered = self.answer(context=passages, question=question)
        return dspy.Prediction(
            answer=answered.answer,
            reasoning=answered.reasoning,
            search_query=query,
            context=passages,
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> HarborRAG:
        # everything deep-copied but the retriever (its index and batching thread):
        # shared, as a client connection would be
        twin = type(self).__new__(type(self))
        memo[id(self)] = twin
        for name, value in self.__dict__.items():
            twin.__dict__[name] = value if name == "_search" else copy.deepcopy(value, memo)
        return twin


# -- the dataset and the metric ----------------------------------------------------------------


def load_harbor() -> tuple[list[Any], list[Any]]:
    """The harbor questions as ``(train, dev)``: 18 and 12 ``dspy.Example`` objects.

    The dev set's named questions come first in it, the same questions in every process.
    """
    rows = harbor_rows()
    examples = [
        dspy.Example(question=q, answer=a, kind=kind).with_inputs("question") for q, a, kind in rows
    ]
    return examples[:18], examples[18:]


def rag_match(example: Any, pred: Any, trace: Any = None) -> float:
    """1.0 when the predicted answer equals the label (case and a final period aside):
    the arithmetic demo's :func:`~dspex.offline.datasets.exact_match`."""
    return exact_match(example, pred, trace)


def rag_match_with_feedback(
    gold: Any,
    pred: Any,
    trace: Any = None,
    pred_name: str | None = None,
    pred_trace: Any = None,
) -> Any:
    """:func:`rag_match` with GEPA's feedback: whether the answer matched, and whether the
    retrieved passages held it (the search query and the passages' first words)."""
    score = rag_match(gold, pred)
    answer = getattr(pred, "answer", None) if pred is not None else None
    query = getattr(pred, "search_query", None) if pred is not None else None
    context = list(getattr(pred, "context", None) or []) if pred is not None else []
    if score:
        feedback = f"Correct: the response {answer!r} matches the expected answer."
    else:
        held = any(_normalize(gold.answer) in _normalize(p) for p in context)
        where = (
            "one of the retrieved passages holds it"
            if held
            else f"none of the {len(context)} passages retrieved for the search query "
            f"{query!r} holds it"
        )
        feedback = (
            f"Incorrect: the expected answer is {gold.answer!r}, the response was "
            f"{answer!r}; {where}."
        )
    return dspy.Prediction(score=score, feedback=feedback)
