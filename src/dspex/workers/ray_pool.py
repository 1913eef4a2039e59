"""The ``ray`` adapter: one Ray actor per worker, on ``workers.ray_address`` or a local Ray.

Ray is imported only when a RayPool starts. When Ray is not initialized yet, the pool
connects to ``workers.ray_address`` or, when that is unset, starts a small local Ray
(2 CPUs, no dashboard) whose workers import this dspex; an already initialized Ray is
reused as it is. On a cluster, every node needs dspex and the program's modules installed.

An actor that dies while it holds an item (``os._exit``, a segfault, killed from outside)
has its item reported ``crashed``; one past ``task_timeout`` is killed with ``ray.kill``
and its item reported ``timeout``; either way a new actor takes its place.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import cloudpickle

from dspex.extras import require
from dspex.model import ErrorInfo
from dspex.workers._core import PoolEventKind, Result, Task, Worker
from dspex.workers.pool import SupervisedPool
from dspex.workers.process import worker_environment

__all__ = ["RayPool", "ensure_ray"]

_LOCAL_CPUS = 2
_actor_class: Any = None


def _import_ray() -> Any:
    return require("ray", "ray", "workers.adapter = 'ray'")


def ensure_ray(address: str | None = None) -> Any:
    """The ``ray`` module, initialized: reused if it is, else connected to ``address`` or,
    without one, a local Ray with 2 CPUs and no dashboard."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": "warning"}
    if address:
        ray.init(address=address, **options)
    else:
        env = {"PYTHONPATH": worker_environment()["PYTHONPATH"]}
        ray.init(num_cpus=_LOCAL_CPUS, runtime_env={"env_vars": env}, **options)
    return ray


def _actor(ray: Any) -> Any:
    global _actor_class
    if _actor_class is None:
        from dspex.workers._ray_actor import WorkerActor

        _actor_class = ray.remote(max_restarts=0, max_task_retries=0)(WorkerActor)
    return _actor_class


def _cause(exc: BaseException) -> str:
    """``died (ActorDiedError: <first line>; Worker exit type: ...)``, without Ray's advice."""
    text = str(exc).strip()
    parts = [text.splitlines()[0]] if text else []
    exit_at = text.find("Worker exit type:")
    if exit_at >= 0:
        detail = text[exit_at:].split(" Some common causes")[0]
        parts.append(detail[:200])
    return f"died ({type(exc).__name__}: {'; '.join(parts)})" if parts else "died"


class RayWorker(Worker):
    """A Ray actor, and a thread per call that waits for its answer."""

    def __init__(self, *args: Any, ray: Any):
        super().__init__(*args)
        self._ray = ray
        self._actor: Any = None
        self._waiter: threading.Thread | None = None
        self._job_id: int | None = None

    def launch(self) -> None:
        init_blob = self.init.blob() if self.init is not None else None
        self._actor = _actor(self._ray).remote(self.name)
        ref = self._actor.init.remote(list(sys.path), init_blob)
        self._wait(ref, self._on_ready)

    def send(self, task: Task) -> None:
        fn_blob = task.job.blob() if self._job_id != task.job.id else None
        item_blob = cloudpickle.dumps(task.item)
        self._job_id = task.job.id
        ref = self._actor.run.remote(task.id, task.job.id, fn_blob, item_blob)
        self._wait(ref, lambda reply: self._on_reply(task.id, reply), task.id)

    def stop(self) -> None:
        pass  # no new work is sent; join() lets the current call finish

    def join(self, timeout: float) -> bool:
        waiter = self._waiter
        if waiter is not None:
            waiter.join(timeout)
            if waiter.is_alive():
                return False
        self.kill()  # idle now: ending the actor loses nothing
        return True

    def kill(self) -> None:
        if self._actor is not None:
            try:
                self._ray.kill(self._actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone, whatever Ray raises for it
                pass

    def _wait(self, ref: Any, on_reply: Any, task_id: int | None = None) -> None:
        def wait() -> None:
            try:
                reply = self._ray.get(ref)
            except self._ray.exceptions.RayTaskError as exc:  # the initializer raised
                cause = exc.cause if exc.cause is not None else exc
                self.post(PoolEventKind.INIT_FAILED, None, ErrorInfo.from_exception(cause))
                return
            except Exception as exc:  # noqa: BLE001 - the actor died, whatever Ray calls it
                self.post(PoolEventKind.DIED, task_id, _cause(exc))
                return
            on_reply(reply)

        self._waiter = threading.Thread(target=wait, name=f"dspex-{self.name}-wait", daemon=True)
        self._waiter.start()

    def _on_ready(self, pid: int) -> None:
        self.pid = pid
        self.post(PoolEventKind.READY, None, pid)

    def _on_reply(self, task_id: int, reply: tuple[Any, ...]) -> None:
        if reply[0] == "result":
            try:
                result = Result(value=cloudpickle.loads(reply[2]))
            except Exception as exc:  # noqa: BLE001 - unpickling raises any type
                wrapped = TypeError(f"the worker's result could not be loaded here: {exc}")
                result = Result.from_exception(wrapped)
        else:
            exception = None
            if reply[3] is not None:
                try:
                    exception = cloudpickle.loads(reply[3])
                except Exception:  # noqa: BLE001 - unpickling raises any type
                    exception = None
            result = Result(error=ErrorInfo(**reply[2]), exception=exception)
        self.post(PoolEventKind.RESULT, task_id, result)


class RayPool(SupervisedPool):
    """Ray actors, one per worker."""

    adapter = "ray"
    _ray: Any = None

    def _prepare(self) -> None:
        self._ray = ensure_ray(self.settings.ray_address)
        super()._prepare()

    def _new_worker(self, name: str) -> Worker:
        return RayWorker(name, self._events, self._initializer, ray=self._ray)
