"""What runs inside a worker process or Ray actor: start-up and one task at a time.

Shared by ``_process_main`` (process workers) and ``_ray_actor`` (Ray actors). Results
travel as cloudpickle blobs inside plain tuples (see ``_wire.py``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import cloudpickle

from dspex.workers._wire import error_dict
from dspex.workers.outcome import WorkerInfo, set_process_worker

__all__ = ["Executor", "initialize"]


def initialize(name: str, parent_path: list[str], init_blob: bytes | None) -> int:
    """Become worker ``name``, run the initializer, and return this process's pid."""
    # The parent's import path comes after ours: functions pickled by reference (a test
    # module, the user's program) import here too, while our own interpreter's wins.
    sys.path.extend(p for p in parent_path if p not in sys.path)
    set_process_worker(WorkerInfo(name, os.getpid()))
    if init_blob is not None:
        initializer, args = cloudpickle.loads(init_blob)
        initializer(*args)
    return os.getpid()


class Executor:
    """Runs tasks; keeps the current map's function so that it is sent once per worker."""

    def __init__(self) -> None:
        self._job_id: int | None = None
        self._fn: Any = None
        self._load_error: BaseException | None = None

    def run(
        self, task_id: int, job_id: int, fn_blob: bytes | None, item_blob: bytes
    ) -> tuple[Any, ...]:
        """``("result", task_id, value_blob)`` or ``("error", task_id, error, exc_blob)``."""
        if fn_blob is not None:
            self._load(job_id, fn_blob)
        try:
            if self._load_error is not None:
                raise self._load_error
            if self._job_id != job_id:
                raise RuntimeError(f"the function of map {job_id} never reached this worker")
            value = self._fn(cloudpickle.loads(item_blob))
        except Exception as exc:  # noqa: BLE001 - the user's function: the item's error
            return ("error", task_id, error_dict(exc), _dump_exception(exc))
        try:
            return ("result", task_id, cloudpickle.dumps(value))
        except Exception as exc:  # noqa: BLE001 - pickling raises any type
            kind = type(value).__qualname__
            wrapped = TypeError(f"the result {kind} could not be pickled: {exc}")
            return ("error", task_id, error_dict(wrapped), None)

    def _load(self, job_id: int, fn_blob: bytes) -> None:
        self._job_id = job_id
        try:
            self._fn, self._load_error = cloudpickle.loads(fn_blob), None
        except Exception as exc:  # noqa: BLE001 - unpickling raises any type
            self._fn, self._load_error = None, exc


def _dump_exception(exc: BaseException) -> bytes | None:
    try:
        data: bytes = cloudpickle.dumps(exc)
        return data
    except Exception:  # noqa: BLE001 - pickling raises any type
        return None  # the ErrorInfo still tells what happened
