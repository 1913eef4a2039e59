"""Running the web app with uvicorn, refusing to expose it without a token.

>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
(True, True, False)
>>> check_bind("0.0.0.0", None)
Traceback (most recent call last):
...
dspex.errors.ConfigError: refusing to serve the dspex UI on '0.0.0.0' ...

:func:`bind` opens the listening socket before anything is printed, so that a port in
use is one clear error (with a free port to try), not a server start that fails.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from dspex.errors import ConfigError
from dspex.store import ResultStore
from dspex.view.web._limits import Limits
from dspex.view.web.access import check_token

__all__ = [
    "Limits",
    "bind",
    "check_bind",
    "check_token",
    "is_loopback",
    "leave_now",
    "limits_from_settings",
    "serve",
]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Raise :class:`dspex.ConfigError` when ``host`` is reachable from elsewhere and no
    access token is configured, or when the token is blank."""
    check_token(token)
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to serve the dspex UI on {host!r} without an access token: anyone "
            "who can reach this address could read every experiment; set ui.token "
            "(DSPEX_UI_TOKEN or --token) or bind 127.0.0.1",
            key="ui.host",
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; :class:`dspex.ConfigError` naming a free port
    to try when this one is taken."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            raise ConfigError(
                f"cannot serve the dspex UI on {host}:{port}: {exc.strerror}", key="ui.port"
            ) from exc
        raise ConfigError(
            f"port {port} on {host} is in use by another program; try --port "
            f"{free_port(host, port)} (or set ui.port)",
            key="ui.port",
        ) from exc
    sock.listen(128)
    return sock


def free_port(host: str, near: int) -> int:
    """A port on ``host`` that no process listens on: the next free one after ``near``."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    for candidate in [*range(near + 1, min(near + 50, 65536)), 0]:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host.strip("[]"), candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise ConfigError(f"no free port on {host}", key="ui.port")


def serve(
    store: ResultStore,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    log_level: str = "info",
    sock: socket.socket | None = None,
    limits: Limits | None = None,
) -> None:
    """Serve the UI until SIGTERM or Ctrl-C (blocks); on ``sock`` when given (see
    :func:`bind`). ``limits`` (default: the ``ui.*`` settings) bound each connection and
    how many there are; see :mod:`dspex.view.web._server`."""
    from dspex.view.web._server import run
    from dspex.view.web.app import create_app

    check_bind(host, token)
    limits = limits or limits_from_settings()
    listening = sock or bind(host, port)
    app = create_app(store, token=token)
    with _sigterm_as_exit():
        run(app, listening, limits, log_level=log_level)


def limits_from_settings() -> Limits:
    """The connection limits the ``ui.*`` settings describe."""
    from dspex.config import get_settings

    ui = get_settings().ui
    return Limits(
        max_connections=ui.max_connections,
        header_timeout=ui.header_timeout,
        keep_alive_timeout=ui.keep_alive_timeout,
        send_timeout=ui.send_timeout,
    )


def leave_now(code: Any) -> NoReturn:
    """End the process with ``code`` at once, once the server has stopped and the store is
    closed: tearing down the interpreter (every module DSPy imported) takes another
    second, and a stopped UI should be gone within 2 s."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """After a graceful shutdown uvicorn raises the signal that stopped it again: make
    SIGTERM a SystemExit then, so that the caller still closes its store (SQLite's -wal
    and -shm files go away with the last connection) before the process ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
