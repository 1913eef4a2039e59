"""The ``process`` adapter: one child process per worker, started with ``workers.python_path``.

Each worker is ``<python_path> -m dspex.workers._process_main`` in its own session (so a
Ctrl-C in the terminal reaches the pool, which then stops the workers gracefully). The
pool talks to it over its stdin and stdout (see ``_wire.py``); the child finds dspex
through ``PYTHONPATH`` and imports the parent's ``sys.path`` after its own. A worker that
exceeds ``task_timeout`` or outlives the shutdown grace period gets SIGKILL (its whole
process group, so a wrapper script cannot leave the interpreter behind).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import cloudpickle

from dspex.model import ErrorInfo
from dspex.workers._core import PoolEventKind, Result, Task, Worker
from dspex.workers._wire import read_frame, write_frame
from dspex.workers.pool import SupervisedPool

__all__ = ["ProcessPool", "worker_environment"]

#: The directory holding the ``dspex`` package (``src/`` of a checkout, site-packages...),
#: found from this file: importing ``dspex`` itself here would be an import upward.
_SOURCE_DIRECTORY = Path(__file__).resolve().parents[2]


def worker_environment() -> dict[str, str]:
    """The environment of a worker process: ours, with dspex's source directory first on
    ``PYTHONPATH`` (the child may be another interpreter without dspex installed)."""
    env = dict(os.environ)
    src = str(_SOURCE_DIRECTORY)
    parts = [src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != src]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def describe_exit(code: int) -> str:
    """``exited with code 3`` / ``was killed by signal SIGSEGV``."""
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class ProcessWorker(Worker):
    """A child process and the thread that reads its replies."""

    def __init__(self, *args: Any, python: str, env: dict[str, str]):
        super().__init__(*args)
        self._python = python
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._job_id: int | None = None

    def launch(self) -> None:
        command = [self._python, "-m", "dspex.workers._process_main"]
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=self._env,
                start_new_session=True,
            )
        except OSError as exc:
            self.post(
                PoolEventKind.DIED, None, f"could not be started with {self._python!r}: {exc}"
            )
            return
        self.pid = self._proc.pid
        self._reader = threading.Thread(target=self._io_main, name=f"dspex-{self.name}-io")
        self._reader.daemon = True
        self._reader.start()

    def send(self, task: Task) -> None:
        fn_blob = task.job.blob() if self._job_id != task.job.id else None
        message = ("task", task.id, task.job.id, fn_blob, cloudpickle.dumps(task.item))
        self._job_id = task.job.id
        self._write(message)

    def stop(self) -> None:
        # Never wait on a worker that is not reading (still busy sending its init frame).
        if self._write_lock.acquire(timeout=0.1):
            self._write_lock.release()
            self._write(("stop",))

    def join(self, timeout: float) -> bool:
        if self._reader is None:
            return True
        self._reader.join(timeout)
        return not self._reader.is_alive()

    def kill(self) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _write(self, message: tuple[Any, ...]) -> None:
        if self._proc is None or self._proc.stdin is None:
            return  # never started: launch() already reported why
        with self._write_lock:
            try:
                write_frame(self._proc.stdin, message)
            except (OSError, ValueError):
                pass  # the worker is gone; the reader thread reports how it died

    def _io_main(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        init_blob = self.init.blob() if self.init is not None else None
        self._write(("init", self.name, list(sys.path), init_blob))
        self._read_replies(self._proc.stdout)
        code = self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self.post(PoolEventKind.DIED, None, describe_exit(code))

    def _read_replies(self, stream: IO[bytes]) -> None:
        while True:
            try:
                message = read_frame(stream)
            except (EOFError, OSError):
                return
            except Exception as exc:  # noqa: BLE001 - a garbled frame: this worker is unusable
                print(f"dspex: {self.name}: unreadable reply: {exc}", file=sys.stderr)
                self.kill()
                return
            self._on_message(message)

    def _on_message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "hello":
            self.pid = int(message[1])  # the interpreter's pid, even behind a wrapper script
        elif kind == "ready":
            self.post(PoolEventKind.READY, None, self.pid)
        elif kind == "init_failed":
            self.post(PoolEventKind.INIT_FAILED, None, ErrorInfo(**message[1]))
        elif kind == "result":
            self.post(PoolEventKind.RESULT, message[1], _load_value(message[2]))
        elif kind == "error":
            result = Result(error=ErrorInfo(**message[2]), exception=_load(message[3]))
            self.post(PoolEventKind.RESULT, message[1], result)


def _load(blob: bytes | None) -> Any:
    if blob is None:
        return None
    try:
        return cloudpickle.loads(blob)
    except Exception:  # noqa: BLE001 - unpickling raises any type
        return None


def _load_value(blob: bytes) -> Result:
    try:
        return Result(value=cloudpickle.loads(blob))
    except Exception as exc:  # noqa: BLE001 - unpickling raises any type
        wrapped = TypeError(f"the worker's result could not be loaded here: {exc}")
        return Result.from_exception(wrapped)


class ProcessPool(SupervisedPool):
    """Worker processes of ``workers.python_path``, talking over pipes."""

    adapter = "process"
    _env: dict[str, str] | None = None

    def _new_worker(self, name: str) -> Worker:
        if self._env is None:
            self._env = worker_environment()
        return ProcessWorker(
            name, self._events, self._initializer, python=self.settings.python_path, env=self._env
        )
