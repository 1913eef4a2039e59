"""Worker pools: run a function over items on threads, processes or Ray actors.

The pool is a generic executor: it knows nothing of DSPy. It runs ``fn(item)`` for every
item on its workers, reports each item once (value, the exception ``fn`` raised, or a
worker that crashed or timed out) and replaces failed workers::

    from dspex.workers import create_pool

    with create_pool(size=4, initializer=setup, initargs=(config,)) as pool:
        for outcome in pool.map(run_one, examples):
            ...

See ``docs/deployment.md`` for the ``workers.*`` settings and the failure semantics.
"""

from dspex.workers.factory import create_pool
from dspex.workers.outcome import TaskOutcome, WorkerInfo, current_worker
from dspex.workers.pool import WorkerPool

__all__ = ["TaskOutcome", "WorkerInfo", "WorkerPool", "create_pool", "current_worker"]
