"""Running the web app with uvicorn, refusing to expose it without a token.

>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
(True, True, False)
>>> check_bind("0.0.0.0", None)
Traceback (most recent call last):
...
dspex.errors.ConfigError: refusing to serve the dspex UI on '0.0.0.0' ...
"""

from __future__ import annotations

import ipaddress
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dspex.errors import ConfigError
from dspex.store import ResultStore

__all__ = ["check_bind", "check_token", "is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(token: str | None) -> None:
    """Raise :class:`dspex.ConfigError` for a token of only whitespace (no token is None).

    >>> check_token("  ")
    Traceback (most recent call last):
    ...
    dspex.errors.ConfigError: the dspex UI access token is blank: ...
    """
    if token is not None and not token.strip():
        raise ConfigError(
            "the dspex UI access token is blank: a token of only whitespace protects "
            "nothing; set a real token (ui.token, DSPEX_UI_TOKEN or --token) or none",
            key="ui.token",
        )


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


def serve(
    store: ResultStore,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve the UI until interrupted (blocks)."""
    import uvicorn

    from dspex.view.web.app import create_app

    check_bind(host, token)
    with _sigterm_as_exit():
        uvicorn.run(create_app(store, token=token), host=host, port=port, log_level=log_level)


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
