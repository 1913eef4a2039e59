"""Hostile clients for the server tests: slowloris connections, and a server process
started the way a user starts it, under a given limit of open files.

    with ui_process(tmp_path, "memory://x", nofile=1024) as ui:
        with SlowClients(ui.port, 1100) as attack:
            ...
        ui.get("/")
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

import dspex

SRC = str(Path(dspex.__file__).resolve().parents[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSPEX_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def open_files_limit(soft: int, hard: int | None = None) -> object:
    """A ``preexec_fn`` that gives the child ``ulimit -n soft`` (hard: the same)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, soft if hard is None else hard))

    return limit


@dataclass
class Process:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str = "/", timeout: float = 5.0) -> tuple[httpx.Response, float]:
        """One ordinary request on a new connection; the response and the seconds it took."""
        started = time.monotonic()
        response = httpx.get(self.url + path, timeout=timeout, headers={"connection": "close"})
        return response, time.monotonic() - started

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> float:
        """Send ``sig``; the seconds until the process has exited (it is killed after
        ``timeout``, and the test fails on the time)."""
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started


def wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the server did not answer within 60 s"
            time.sleep(0.1)


@contextmanager
def server_process(
    command: Sequence[str],
    workdir: Path,
    port: int,
    *,
    nofile: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Process]:
    log = workdir / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            cwd=workdir,
            env=child_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=open_files_limit(nofile) if nofile else None,
        )
    running = Process(port, process, log)
    try:
        wait_until_up(process, running.url + "/", log)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def ui_process(
    workdir: Path, store_url: str, *, nofile: int | None = None, env: dict[str, str] | None = None
) -> Iterator[Process]:
    """``python -m dspex ui`` on a free port over ``store_url``."""
    port = free_port()
    command = [sys.executable, "-m", "dspex", "ui", "--port", str(port), "--store", store_url]
    with server_process(command, workdir, port, nofile=nofile, env=env) as running:
        yield running


@contextmanager
def app_process(workdir: Path, *limits: str, nofile: int | None = None) -> Iterator[Process]:
    """:mod:`tests.view.hostile_app` (the UI's server over a test app with a slow and a
    big page) on a free port; ``limits``: max_connections header keep_alive send."""
    port = free_port()
    script = str(Path(__file__).with_name("hostile_app.py"))
    command = [sys.executable, script, str(port), *limits]
    with server_process(command, workdir, port, nofile=nofile) as running:
        yield running


class SlowClients:
    """``count`` connections that send a request's first line, then one header line every
    ``every`` seconds, and never finish (slowloris). With ``reconnect``, a connection the
    server drops is replaced by a new one, as a determined attacker does."""

    def __init__(
        self, port: int, count: int, *, every: float = 1.0, reconnect: bool = False
    ) -> None:
        self.port, self.count, self.every, self.reconnect = port, count, every, reconnect
        self.sockets: list[socket.socket] = []
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def _open(self, count: int) -> None:
        for _ in range(count):
            if self._stop.is_set():
                return
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            except OSError:
                continue
            self.sockets.append(sock)
            self.opened += 1

    def __enter__(self) -> SlowClients:
        self._open(self.count)
        self._thread.start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(self.every):
            for sock in list(self.sockets):
                try:
                    sock.send(b"X-Slow: 1\r\n")
                except OSError:
                    self.sockets.remove(sock)
                    sock.close()
            if self.reconnect:
                self._open(self.count - len(self.sockets))

    def alive(self) -> int:
        return len(self.sockets)

    def leave(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for sock in list(self.sockets):
            sock.close()
        self.sockets.clear()

    def __exit__(self, *exc: object) -> None:
        self.leave()
