"""Choose and build the pool the settings ask for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dspex.config import get_settings
from dspex.config.schema import WorkerAdapterName, WorkersSettings
from dspex.workers.pool import WorkerPool

__all__ = ["create_pool"]


def create_pool(
    settings: WorkersSettings | None = None,
    *,
    size: int | None = None,
    initializer: Callable[..., Any] | None = None,
    initargs: Iterable[Any] = (),
) -> WorkerPool:
    """A pool for ``settings`` (default: the effective ``workers`` settings), not started.

    ``workers.adapter`` picks ThreadPool, ProcessPool or RayPool; ``pooling_enabled =
    false`` gives an InlinePool. ``size`` overrides ``workers.pool_size``::

        >>> from dspex.config.schema import WorkersSettings
        >>> create_pool(WorkersSettings(adapter="process", pool_size=2))
        <ProcessPool size=2>
        >>> create_pool(WorkersSettings(pooling_enabled=False))
        <InlinePool size=1>
    """
    settings = settings if settings is not None else get_settings().workers
    options: dict[str, Any] = {
        "initializer": initializer,
        "initargs": initargs,
        "settings": settings,
    }
    if not settings.pooling_enabled:
        from dspex.workers.inline import InlinePool

        return InlinePool(size=1, **options)
    pool_size = size if size is not None else settings.pool_size
    if settings.adapter is WorkerAdapterName.PROCESS:
        from dspex.workers.process import ProcessPool

        return ProcessPool(size=pool_size, **options)
    if settings.adapter is WorkerAdapterName.RAY:
        from dspex.workers.ray_pool import RayPool

        return RayPool(size=pool_size, **options)
    from dspex.workers.thread import ThreadPool

    return ThreadPool(size=pool_size, **options)
