"""The Ray engine cancels only tasks that have not ended: Ray 2.60 can abort the driver
when a forced cancel meets a task's completing reply. The race itself cannot be made to
happen on purpose with a real Ray (tests/study/test_ray_end_to_end.py runs the engine on
one), so this checks the engine's side of it against a stand-in for the ``ray`` module
that says which tasks have ended and records what is cancelled."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from dspex.study.ray_engine import RayEngine


class _Cancelled(Exception):
    pass


class _RayError(Exception):
    pass


class _Ray:
    exceptions = SimpleNamespace(
        TaskCancelledError=_Cancelled, RayTaskError=type("RayTaskError", (_RayError,), {}),
        RayError=_RayError,
    )  # fmt: skip

    def __init__(self, ended: set[str]) -> None:
        self.ended = set(ended)
        self.cancelled: list[str] = []

    def wait(self, refs: list[str], num_returns: int, timeout: float) -> tuple[list, list]:
        ready = [r for r in refs if r in self.ended or r in self.cancelled]
        return ready, [r for r in refs if r not in ready]

    def cancel(self, ref: str, force: bool) -> None:
        self.cancelled.append(ref)  # the engine swallows what cancel raises: recorded

    def get(self, ref: str) -> Any:
        if ref in self.cancelled and ref not in self.ended:
            raise _Cancelled(ref)
        return SimpleNamespace(host="h", pid=1)


def _engine(ray: _Ray, started: float, timeout: float | None = None) -> RayEngine:
    engine = RayEngine(2, timeout=timeout)
    engine._ray = ray
    for key in ("ended", "running"):
        engine._flight[key] = (SimpleNamespace(key=key, attempt=1), started)
    return engine


def test_a_stop_cancels_the_running_cell_and_keeps_the_one_that_ended():
    ray = _Ray(ended={"ended"})
    events = _engine(ray, time.monotonic()).stop()
    assert ray.cancelled == ["running"]
    assert {(e.key, e.kind) for e in events} == {("ended", "done"), ("running", "interrupted")}


def test_a_time_limit_cancels_only_the_cell_still_running():
    ray = _Ray(ended={"ended"})
    engine = _engine(ray, time.monotonic() - 60, timeout=1)
    engine._expire()
    assert ray.cancelled == ["running"]
    assert engine._timed_out == {"running"}
