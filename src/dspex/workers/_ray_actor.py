"""The Ray actor behind one ``ray`` worker (imported on the Ray side)."""

from __future__ import annotations

from typing import Any

from dspex.workers._remote import Executor, initialize


class WorkerActor:
    """One worker: ``init`` once, then ``run`` one task at a time."""

    def __init__(self, name: str):
        self.name = name
        self._executor = Executor()

    def init(self, parent_path: list[str], init_blob: bytes | None) -> int:
        return initialize(self.name, parent_path, init_blob)

    def run(
        self, task_id: int, job_id: int, fn_blob: bytes | None, item_blob: bytes
    ) -> tuple[Any, ...]:
        return self._executor.run(task_id, job_id, fn_blob, item_blob)
