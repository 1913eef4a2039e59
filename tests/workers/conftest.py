"""Pools for the worker tests (the session's local Ray comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dspex.config.schema import WorkersSettings
from dspex.workers import WorkerPool, create_pool

ADAPTERS = ["thread", "process", pytest.param("ray", marks=pytest.mark.ray)]


@pytest.fixture
def make_pool(request: pytest.FixtureRequest) -> Iterator[Callable[..., WorkerPool]]:
    """make_pool(adapter, size=2, initializer=None, initargs=(), start=True, **settings)."""
    pools: list[WorkerPool] = []

    def make(
        adapter: str,
        *,
        size: int = 2,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        start: bool = True,
        **settings: Any,
    ) -> WorkerPool:
        if adapter == "ray":
            request.getfixturevalue("ray_session")
        pooling = adapter != "inline"
        options = {"adapter": adapter if pooling else "thread", "pooling_enabled": pooling}
        options.setdefault("worker_shutdown_grace_period", 1.0)
        if adapter == "ray":
            # a Ray worker starts a process that imports DSPy: on a slow 2-core machine the
            # third of three took more than the default 10 s (tests of the timeouts set theirs)
            options.update(worker_init_timeout=60.0, pool_startup_timeout=90.0)
        config = WorkersSettings(**{**options, "pool_size": size, **settings})
        pool = create_pool(config, initializer=initializer, initargs=initargs)
        pools.append(pool)
        if start:
            pool.start()
        return pool

    yield make
    for pool in pools:
        pool.shutdown(grace=0)
