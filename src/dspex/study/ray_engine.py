"""The ``ray`` engine: each cell a plain Ray task on an existing cluster, or a local Ray.

Why plain tasks and not Ray Tune: a study's grid is fixed (arms x seeds), so Tune's
search algorithms and schedulers have nothing to decide, while its trial bookkeeping,
checkpoints and resume state (a directory on the driver's disk) would duplicate what the
study keeps in the ResultStore, beside its cells' experiments, where every machine reads
it. A task per cell gives what a study needs and nothing it must reconcile: a CPU
request per cell (``num_cpus``), placement anywhere on the cluster, no automatic retry
(``max_retries=0``: the runner retries a cell whose worker died and records the attempt
and its cause), and ``ray.cancel(force=True)`` to stop a cell when the study is stopped
or a cell exceeds its time limit.

Connects with :func:`dspex.workers.ray_pool.ensure_ray`: ``address`` (``auto``,
``ray://head:10001``), else a local Ray; a Ray already initialized in this process is
used as it is.
"""

from __future__ import annotations

import time
from typing import Any

from dspex.errors import StudyError, WorkerError
from dspex.study.cell import CellReport, CellTask, run_cell
from dspex.study.engines import CellEvent, Engine, EventKind, cause_of

__all__ = ["RayEngine"]

_STOPPED = "the study was stopped (Ctrl-C) while the cell ran"
_CANCEL_WAIT = 10.0  # seconds to see cancelled tasks end before the study goes on


def _cell_task(task: CellTask) -> CellReport:
    return run_cell(task)


class RayEngine(Engine):
    name = "ray"

    def __init__(
        self,
        capacity: int | None,
        *,
        address: str | None = None,
        cpus_per_cell: float = 1.0,
        timeout: float | None = None,
    ) -> None:
        self.requested = capacity
        self.capacity = capacity or 1
        self.address = address
        self.cpus_per_cell = cpus_per_cell
        self.timeout = timeout
        self._ray: Any = None
        self._remote: Any = None
        self._flight: dict[Any, tuple[CellTask, float]] = {}
        self._timed_out: set[Any] = set()
        self._pending_started: list[CellEvent] = []
        self._stopped = False

    def start(self) -> None:
        from dspex.workers.ray_pool import ensure_ray

        try:
            self._ray = ensure_ray(self.address)
        except WorkerError as exc:
            raise StudyError(str(exc)) from exc
        except Exception as exc:  # ConnectionError, ValueError from ray.init
            where = self.address or "a local Ray"
            raise StudyError(f"cannot connect to Ray at {where}: {cause_of(exc)}") from exc
        if self.requested is None:
            cpus = float(self._ray.cluster_resources().get("CPU", 1.0))
            self.capacity = max(1, int(cpus // self.cpus_per_cell))
        self._remote = self._ray.remote(_cell_task).options(
            num_cpus=self.cpus_per_cell, max_retries=0, name="dspex-study-cell"
        )

    def submit(self, task: CellTask) -> None:
        ref = self._remote.remote(task)
        self._flight[ref] = (task, time.monotonic())
        self._pending_started.append(CellEvent("started", task.key, task.attempt, worker="ray"))

    @property
    def in_flight(self) -> int:
        return len(self._flight)

    def poll(self, timeout: float) -> list[CellEvent]:
        events, self._pending_started = list(self._pending_started), []
        self._expire()
        if not self._flight:
            if not events:
                time.sleep(timeout)
            return events
        ready, _ = self._ray.wait(list(self._flight), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self._ray.wait(list(self._flight), num_returns=len(self._flight), timeout=0)
        for ref in ready:
            task, _ = self._flight.pop(ref)
            events.append(self._outcome(ref, task))
        return events

    def _expire(self) -> None:
        if self.timeout is None:
            return
        now = time.monotonic()
        for ref, (_, started) in list(self._flight.items()):
            if ref not in self._timed_out and now - started > self.timeout:
                if not self._unfinished([ref]):
                    continue  # it ended just now: its outcome is read as it is
                self._timed_out.add(ref)
                self._ray.cancel(ref, force=True)

    def _unfinished(self, refs: list[Any]) -> list[Any]:
        """Those of ``refs`` whose task has not ended. Only they are cancelled: Ray 2.60 can
        abort the driver ("Check failed: ... Tried to complete task that was not pending")
        when a forced cancel meets a task's completing reply. Asking first narrows that
        window; it cannot close it (the reply may land between the two calls)."""
        if not refs:
            return []
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        done = set(ready)
        return [ref for ref in refs if ref not in done]

    def _outcome(self, ref: Any, task: CellTask) -> CellEvent:
        exceptions = self._ray.exceptions
        try:
            report: CellReport = self._ray.get(ref)
        except exceptions.TaskCancelledError:
            if ref in self._timed_out:
                cause = f"ran longer than {self.timeout:g} s (the cell's timeout); it was stopped"
                return CellEvent("timeout", task.key, task.attempt, cause=cause, worker="ray")
            return CellEvent("interrupted", task.key, task.attempt, cause=_STOPPED, worker="ray")
        except exceptions.RayTaskError as exc:  # the cell itself raised
            cause = cause_of(exc.cause if getattr(exc, "cause", None) is not None else exc)
            return CellEvent("failed", task.key, task.attempt, cause=cause, worker="ray")
        except exceptions.RayError as exc:  # the worker or its node died
            kind: EventKind = "interrupted" if self._stopped else "crashed"
            cause = _STOPPED if self._stopped else f"the Ray worker died: {cause_of(exc)}"
            return CellEvent(kind, task.key, task.attempt, cause=cause, worker="ray")
        return CellEvent(
            "done",
            task.key,
            task.attempt,
            report=report,
            worker="ray",
            host=report.host,
            pid=report.pid,
        )

    def stop(self) -> list[CellEvent]:
        if self._stopped or self._ray is None:
            self._stopped = True
            return []
        self._stopped = True
        for ref in self._unfinished(list(self._flight)):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone, whatever Ray raises for it
                pass
        events: list[CellEvent] = []
        deadline = time.monotonic() + _CANCEL_WAIT
        while self._flight and time.monotonic() < deadline:
            ready, _ = self._ray.wait(
                list(self._flight), num_returns=len(self._flight), timeout=0.5
            )
            for ref in ready:
                task, _ = self._flight.pop(ref)
                event = self._outcome(ref, task)
                if event.kind != "done":
                    event = CellEvent("interrupted", task.key, task.attempt, cause=_STOPPED)
                events.append(event)
        for task, _ in self._flight.values():
            events.append(CellEvent("interrupted", task.key, task.attempt, cause=_STOPPED))
        self._flight.clear()
        return events
