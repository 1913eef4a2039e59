"""The memory backend (the library default) at 100,000 experiments. Prints a table.

    python -m benchmarks memory            # DSPEX_BENCH_SCALE=0.1 or --quick: fewer

Each query shape is timed (p50 over repeats) through ``ResultStore.query_experiments``
and ``count_experiments``, beside the reference semantics every backend is checked
against (``dspex.store.query.page``: a linear scan and sort of every summary, what the
memory backend did before it kept its summaries in query order). Target: a page in
under 5 ms at 100,000 experiments.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from benchmarks.bench_store import SCOPES, p50, query_filters, scale, summaries, table
from dspex import ResultStore
from dspex.store.memory import MemoryBackend
from dspex.store.query import Query, page


def _scope(i: int) -> dict[str, Any]:
    return {"scope": SCOPES[i % len(SCOPES)].key, "limit": 50}


SHAPES: list[tuple[str, Callable[[int], dict[str, Any]]]] = [
    ("program + 60-day range, newest first", query_filters),
    ("newest first, no filter", lambda i: {"limit": 50}),
    ("best score first, one example set", lambda i: {"order_by": "score", **_scope(i)}),
    ("score >= 0.9, one example set", lambda i: {"min_score": 0.9, "limit": 50, **_scope(i)}),
    ("tag + optimizer", lambda i: {"tags": ["nightly"], "optimizer": "SIMBA", "limit": 50}),
    (
        "third page (offset 100), one program",
        lambda i: {"program": f"program_{i % 20}", "limit": 50, "offset": 100},
    ),
    (
        "one day, all programs",
        lambda i: {
            "created_after": (datetime(2025, 1, 1) + timedelta(days=i % 300)).isoformat(),
            "created_before": (datetime(2025, 1, 2) + timedelta(days=i % 300)).isoformat(),
        },
    ),
]


def main() -> None:
    count = max(1000, int(100_000 * scale()))
    items = summaries(count, random.Random(11))
    store = ResultStore.open("memory://").connect()
    backend = store.backend
    assert isinstance(backend, MemoryBackend)
    backend.bulk_load(items)
    rows = []
    for name, filters in SHAPES:
        got = p50(lambda i, f=filters: store.query_experiments(f(i)), 50)
        counted = p50(lambda i, f=filters: store.count_experiments(f(i)), 20)
        scan = p50(lambda i, f=filters: page(Query.parse(f(i)), items), 5)
        assert list(store.query_experiments(filters(7))) == page(Query.parse(filters(7)), items)
        rows.append([name, got * 1000, counted * 1000, scan * 1000, scan / got])
    print(f"\nMemory backend, {count:,} experiments (p50 ms)\n")
    print(table(["query", "page", "count", "linear scan", "x faster"], rows))
    worst = max(row[1] for row in rows)
    verdict = "ok" if worst < 5 else "MISSED"
    print(f"\nTarget: every page under 5 ms at {count:,} experiments: {worst:.2f} ms, {verdict}")


if __name__ == "__main__":
    main()
