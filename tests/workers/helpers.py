"""Functions the pool tests ship to workers (importable, so they pickle by reference)."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from typing import Any

from dspex.workers import current_worker

_local = threading.local()  # per worker: a thread for the thread adapter, else the process
init_calls: list[str] = []  # initializer calls seen in this process
_lock = threading.Lock()


def square(x: int) -> int:
    return x * x


def whoami(_: Any) -> tuple[str, int, int]:
    info = current_worker()
    return info.name, info.pid, os.getpid()


def remember(tag: str) -> None:
    _local.tag = tag
    _local.calls = getattr(_local, "calls", 0) + 1
    with _lock:
        init_calls.append(current_worker().name)


def recall(x: int) -> tuple[str, int, str, int]:
    return _local.tag, _local.calls, current_worker().name, x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"item {x} is bad")
    return x


class UnpicklableError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.lock = threading.Lock()  # cannot be pickled


def raise_unpicklable(x: int) -> int:
    raise UnpicklableError(f"no pickling {x}")


def crash(mode: str) -> Any:
    """Kill the worker running this in the way ``mode`` says; other modes return ``mode``."""
    if mode == "exit":
        os._exit(3)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)
    if mode == "segfault":
        ctypes.string_at(0)
    if mode == "systemexit":
        raise SystemExit(4)
    if mode == "keyboardinterrupt":
        raise KeyboardInterrupt
    return mode


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def sleepy_init(seconds: float) -> None:
    time.sleep(seconds)


def failing_init() -> None:
    raise RuntimeError("cannot load the program")


def chatty(x: int) -> int:
    print("noise on stdout", x, flush=True)
    os.write(1, b"raw noise on fd 1\n")
    return x + 1


def configure_dummy_lm(answer: str) -> None:
    import dspy

    dspy.configure(lm=dspy.utils.DummyLM([{"answer": answer}] * 50))
