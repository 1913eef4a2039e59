"""The memory backend's summaries, kept in query order so that a page costs what it returns.

A :class:`Catalog` holds every summary once and sorted lists of keys: all experiments
by creation time, each program's and each tag's by creation time, and all by score (the
ascending :func:`~dspex.store.query.sort_key` orders). A query walks the narrowest list
that has its order backwards from the first key it can return (its ``created_before``,
cursor or ``max_score``) and stops as soon as the page is full, checking each candidate
with the reference :func:`~dspex.store.query.matches`; the answer is exactly what
:func:`~dspex.store.query.page` would return over every summary. A count walks the
narrowest list of any order::

    >>> from dspex.store.query import ExperimentSummary, Query
    >>> catalog = Catalog()
    >>> catalog.put(ExperimentSummary(id="exp_01ARZ3NDEKTSV4RRFFQ69G5FAV", name="n",
    ...             program="qa", status="completed", created_at="2026-01-01T00:00:00Z"))
    >>> [s.program for s in catalog.query(Query.parse({"program": "qa"}))]
    ['qa']

Not thread-safe: the memory backend calls it under its lock.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from dspex.store.query import (
    ExperimentSummary,
    Query,
    after_bound,
    fold,
    matches,
    ranking_score,
)

__all__ = ["Catalog"]

_LAST_ID = "\U0010ffff"  # sorts after every id: (x, _LAST_ID) bounds every key (x, id)


def _created(summary: ExperimentSummary) -> tuple[datetime, str]:
    return (summary.created_at, summary.id)


def _scored(summary: ExperimentSummary) -> tuple[bool, float, str]:
    score = ranking_score(summary)
    return (score is not None, 0.0 if score is None else score, summary.id)


def _scope(summary: ExperimentSummary) -> str | None:
    return summary.score_scope.key if summary.score_scope is not None else None


def _remove(keys: list[Any], key: Any) -> None:
    at = bisect_left(keys, key)
    if at < len(keys) and keys[at] == key:
        del keys[at]


class Catalog:
    """Summaries by id, plus the sorted key lists queries walk (see the module docstring)."""

    def __init__(self) -> None:
        self.summaries: dict[str, ExperimentSummary] = {}
        self._by_created: list[tuple[datetime, str]] = []
        self._by_program: dict[str, list[tuple[datetime, str]]] = {}
        self._by_tag: dict[str, list[tuple[datetime, str]]] = {}
        # per score scope (its key): best scores compare only within one (query.py)
        self._by_score: dict[str | None, list[tuple[bool, float, str]]] = {}

    def __len__(self) -> int:
        return len(self.summaries)

    def put(self, summary: ExperimentSummary) -> None:
        """Add ``summary``, or replace the one with its id."""
        self.remove(summary.id)
        self.summaries[summary.id] = summary
        insort(self._by_created, _created(summary))
        insort(self._by_program.setdefault(fold(summary.program), []), _created(summary))
        for tag in set(summary.tags):
            insort(self._by_tag.setdefault(tag, []), _created(summary))
        insort(self._by_score.setdefault(_scope(summary), []), _scored(summary))

    def remove(self, experiment_id: str) -> None:
        old = self.summaries.pop(experiment_id, None)
        if old is None:
            return
        _remove(self._by_created, _created(old))
        _remove(self._by_program[fold(old.program)], _created(old))
        for tag in set(old.tags):
            _remove(self._by_tag[tag], _created(old))
        _remove(self._by_score[_scope(old)], _scored(old))

    def query(self, query: Query) -> list[ExperimentSummary]:
        """The page ``query`` asks for, in its order."""
        found: list[ExperimentSummary] = []
        skip = query.offset
        for summary in self._candidates(query):
            if skip:
                skip -= 1
                continue
            found.append(summary)
            if len(found) == query.limit:
                break
        return found

    def count(self, query: Query) -> int:
        """How many summaries match ``query``'s filters (paging ignored)."""
        if query == Query(limit=query.limit, offset=query.offset, order_by=query.order_by):
            return len(self.summaries)  # no filter at all
        unpaged = Query(**{**query.__dict__, "after": None})
        ranges = [self._by_time(unpaged)]
        if query.min_score is not None or query.max_score is not None:
            ranges.append(self._by_score_range(unpaged))
        keys, low, high = min(ranges, key=lambda r: r[2] - r[1])
        return sum(1 for p in range(low, high) if matches(query, self.summaries[keys[p][-1]]))

    def _candidates(self, query: Query) -> Iterator[ExperimentSummary]:
        """Matching summaries in the query's order, from its cursor on (offset not applied)."""
        if query.order_by == "score":
            keys, low, high = self._by_score_range(query)
        else:
            keys, low, high = self._by_time(query)
        bound = after_bound(query)
        if bound is not None:
            high = min(high, bisect_left(keys, bound))
        for position in range(high - 1, low - 1, -1):
            summary = self.summaries[keys[position][-1]]
            if matches(query, summary):
                yield summary

    def _by_score_range(self, query: Query) -> tuple[list[Any], int, int]:
        """The score-ordered keys of the query's scope and the slice of them the score
        filters allow (score filters and order come with a scope: see query.py)."""
        keys = self._by_score.get(query.scope, [])
        low, high = 0, len(keys)
        if query.min_score is not None:  # unscored rows never match a score filter
            low = bisect_left(keys, (True, query.min_score, ""))
        if query.max_score is not None:
            high = bisect_left(keys, (True, query.max_score, _LAST_ID))
        return keys, low, high

    def _by_time(self, query: Query) -> tuple[list[Any], int, int]:
        """The shortest time-ordered key list that holds every match (all experiments, the
        program's, or one of the tags'), and the slice of it within the dates."""
        lists = [self._by_created]
        if query.program is not None:
            lists.append(self._by_program.get(fold(query.program), []))
        lists += [self._by_tag.get(tag, []) for tag in query.tags]
        keys = min(lists, key=len)
        low, high = 0, len(keys)
        if query.created_after is not None:
            low = bisect_left(keys, (query.created_after, ""))
        if query.created_before is not None:
            high = bisect_left(keys, (query.created_before, ""))
        return keys, low, high
