"""A RAG program for the retrieval tests, with an embedder written here that counts its calls.

The embedder is a hashed bag of words (crc32, so the same in every process); its calls
are counted in memory and, for workers in other processes, one line per call in a file.
"""

from __future__ import annotations

import re
import threading
import zlib
from pathlib import Path

import dspy
import numpy as np

import dspex

DIMENSIONS = 64
CORPUS = [f"Fact {i}: the sum of {i} and {i + 1} is {2 * i + 1}." for i in range(24)]


class CountingEmbedder:
    """``embed(texts)``: one row per text; counts its calls (and their texts)."""

    def __init__(self, path: Path | str | None = None, *, explode_on: str | None = None) -> None:
        self.calls = 0
        self.texts = 0
        self.path = str(path) if path is not None else None
        self.explode_on = explode_on
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.texts += len(texts)
            if self.path is not None:
                with open(self.path, "a") as out:
                    out.write(f"{len(texts)}\n")
        if self.explode_on and any(self.explode_on in t for t in texts):
            raise RuntimeError("the embedder exploded")
        return embed(texts)


def embed(texts: list[str]) -> np.ndarray:
    rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            rows[row, zlib.crc32(word.encode()) % DIMENSIONS] += 1.0
    return rows


def calls_in(path: Path) -> list[int]:
    """The batch sizes of the calls written to ``path`` (one line per call)."""
    return [int(line) for line in path.read_text().split()] if path.exists() else []


class RAG(dspy.Module):
    """Search the corpus for the question, answer from the passages found."""

    def __init__(self, search) -> None:
        super().__init__()
        self.search = search
        self.answer = dspy.Predict("context, question -> answer")
        self.searches = 0
        self._lock = threading.Lock()

    def forward(self, question: str) -> dspy.Prediction:
        with self._lock:
            self.searches += 1
        found = self.search(question)
        return self.answer(context=found.passages, question=question)


class Searcher:
    """A search object of the user's: its ``__call__`` is marked as a retriever, and its
    attributes (an API key among them) are its settings."""

    def __init__(self, embedder: CountingEmbedder, api_key: str) -> None:
        self.endpoint = "https://search.example/v1"
        self.api_key = api_key
        self.embedder = embedder
        self._matrix: np.ndarray | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_matrix": None}

    @dspex.retriever
    def __call__(self, query: str, k: int = 3) -> dspy.Prediction:
        if self._matrix is None:
            self._matrix = embed(CORPUS)  # not through the embedder: its calls count queries
        vector = dspy.Embedder(self.embedder, caching=False)([query])[0]
        scores = self._matrix @ vector
        top = [int(i) for i in np.argsort(-scores)[:k]]
        return dspy.Prediction(
            passages=[CORPUS[i] for i in top], indices=top, scores=[float(scores[i]) for i in top]
        )


def question(i: int) -> str:
    return f"What is {i} + {i + 1}?"
