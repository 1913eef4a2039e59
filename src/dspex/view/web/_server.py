"""The HTTP server of ``dspex ui``: uvicorn's h11 protocol, with the limits uvicorn lacks.

uvicorn reads a request's headers for as long as the client cares to send them, keeps a
fresh connection that says nothing forever, accepts connections until the process runs
out of file descriptors (Python 3.11's accept loop then logs ``Too many open files``
2,048 times a turn and the server stops answering, SIGTERM included) and, stopping,
waits for every connection to close. Here:

* **A connection cap, kept at accept.** Connections are accepted by :class:`Acceptor`,
  not by asyncio's server, and counted until their socket closes; the cap stays below
  the process's file-descriptor budget (:func:`fd_budget`). At the cap, the connection
  that has waited longest for a request's headers is dropped for the new one (a slow
  client loses its place, a browser does not); when every connection is busy with a
  request, the new one gets ``503`` and is closed.
* **Deadlines** (:class:`GuardedH11Protocol`): a request's headers within
  ``header_timeout`` of connecting (``keep_alive_timeout`` more after a response), a
  response's bytes read by the client within ``send_timeout``; past one, the
  connection is dropped.
* **Shutdown within 2 s** on SIGTERM or Ctrl-C: no more accepts, idle connections closed,
  requests in flight given 1 s, then every connection dropped; a watchdog ends the
  process at 2 s whatever still runs (a request's thread, say).

Everything else (HTTP parsing, the ASGI cycle, flow control, the access log) is
uvicorn's.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import resource
import socket
import sys
import threading
import time
from collections import OrderedDict
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from dspex.view.web._limits import Limits

__all__ = [
    "SHUTDOWN_SECONDS",
    "Acceptor",
    "GuardedH11Protocol",
    "HardenedServer",
    "Registry",
    "fd_budget",
    "run",
]

logger = logging.getLogger("uvicorn.error")

SHUTDOWN_SECONDS = 2.0
"""The process ends at most this long after SIGTERM or Ctrl-C."""
GRACE_SECONDS = 1.0
"""Of which requests in flight may take this long to finish."""
FD_RESERVE = 96
"""File descriptors kept out of the connection budget: the store's files and database
connections, templates, logs, a turn of accepts (:data:`ACCEPTS_PER_TURN`) and refused
sockets lingering (:data:`LINGERING`)."""
ACCEPTS_PER_TURN = 16
LINGERING = 32
"""Refused sockets kept open at most (a second each) so that their 503 is read."""
_REFUSAL_BODY = b"dspex ui: too many connections; try again in a moment\n"
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\nretry-after: 1\r\ncontent-length: %d\r\n\r\n%s"
    % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


def fd_budget(reserve: int = FD_RESERVE) -> tuple[int, int]:
    """``(connections, soft limit)``: raise this process's soft limit of open files toward
    its hard limit (where the system allows), then count what is left for connections
    once the descriptors already open and ``reserve`` are set aside."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):  # not allowed here (macOS caps it, containers may)
            pass
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(soft - _open_descriptors() - reserve, 0), soft


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # no /proc (macOS): assume a fresh interpreter's few dozen
        return 64


class _Once:
    """Logs a warning at most once every ``every`` seconds (an attack is one line, not
    thousands)."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: float | None = None

    def warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if self._last is None or now - self._last >= self.every:
            self._last = now
            logger.warning(message, *args)


class Registry:
    """The open connections: how many sockets are open, and which connections are waiting
    for a request's headers, longest-waiting first."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open = 0  # accepted sockets not yet closed
        self.waiting: OrderedDict[GuardedH11Protocol, None] = OrderedDict()
        self.dropping: set[GuardedH11Protocol] = set()

    @property
    def full(self) -> bool:
        return self.open - len(self.dropping) >= self.cap

    def make_room(self) -> bool:
        """Drop the connection that has waited longest for its headers; False if every
        connection is busy with a request."""
        for connection in self.waiting:
            if connection not in self.dropping:
                connection.drop()
                return True
        return False

    def closed(self, connection: GuardedH11Protocol) -> None:
        self.open -= 1
        self.waiting.pop(connection, None)
        self.dropping.discard(connection)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines for a request's headers and for a client
    that stops reading its response."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        registry: Registry,
        limits: Limits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.registry = registry
        self.limits = limits
        self._deadline: asyncio.TimerHandle | None = None
        self._stalled: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_request(self.limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:  # a request's headers are in: the app has it
            self.registry.waiting.pop(self, None)
            self._cancel_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if self._stalled is not None:
            self._stalled.cancel()
        self.registry.closed(self)
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stalled is None:
            self._stalled = self.loop.call_later(self.limits.send_timeout, self.drop)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    # -- uvicorn's hooks ----------------------------------------------------------------

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timer
        if not self.transport.is_closing():
            limits = self.limits
            self._await_request(limits.keep_alive_timeout + limits.header_timeout)

    # -- deadlines ----------------------------------------------------------------------

    def _await_request(self, seconds: float) -> None:
        self.registry.waiting[self] = None
        self.registry.waiting.move_to_end(self)
        self._cancel_deadline()
        self._deadline = self.loop.call_later(seconds, self._expire, self.cycle)

    def _expire(self, cycle: Any) -> None:
        if self.cycle is cycle:  # no request since: headers too slow, or idle too long
            self.drop()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def drop(self) -> None:
        """Close the connection now, without waiting for anything to be sent or read."""
        self.registry.dropping.add(self)
        if self.transport is not None:  # closing, too: a graceful close waits for the client
            self.transport.abort()


class Acceptor:
    """Accepts connections on a listening socket within the :class:`Registry`'s cap.

    Takes the place of asyncio's server in :class:`HardenedServer` (``close`` and
    ``wait_closed`` are what uvicorn calls on it).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        factory: Any,
        registry: Registry,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.factory = factory
        self.registry = registry
        self._closed = False
        self._lingering: set[socket.socket] = set()
        self._warn_full = _Once()
        self._warn_fds = _Once()

    def start(self) -> None:
        self.sock.setblocking(False)
        self.loop.add_reader(self.sock.fileno(), self._ready)

    def _ready(self) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                conn, _address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._out_of_resources(exc)
                return
            if self.registry.full and not self.registry.make_room():
                self._refuse(conn)
                continue
            self.registry.open += 1
            self.loop.create_task(self._serve(conn))

    async def _serve(self, conn: socket.socket) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await self.loop.connect_accepted_socket(self.factory, conn)
        except (OSError, ValueError):  # the client left before its transport was made
            self.registry.open -= 1
            conn.close()

    def _refuse(self, conn: socket.socket) -> None:
        """Answer ``503`` and close. The socket lingers (reading and discarding) until the
        client closes or a second passes, so that the client reads the answer instead of
        a reset; at most :data:`LINGERING` at once, beyond which it is closed at once."""
        self._warn_full.warn(
            "dspex ui: %d connections open, every one busy with a request (the limit, "
            "ui.max_connections, is %d): refusing new ones with 503",
            self.registry.open,
            self.registry.cap,
        )
        try:
            conn.setblocking(False)
            conn.send(_REFUSAL)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            conn.close()
            return
        if len(self._lingering) >= LINGERING:
            conn.close()
            return
        self._lingering.add(conn)
        self.loop.add_reader(conn.fileno(), self._discard, conn)
        self.loop.call_later(1.0, self._forget, conn)

    def _discard(self, conn: socket.socket) -> None:
        try:
            if conn.recv(65536):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        self._forget(conn)

    def _forget(self, conn: socket.socket) -> None:
        if conn in self._lingering:
            self._lingering.discard(conn)
            self.loop.remove_reader(conn.fileno())
            conn.close()

    def _out_of_resources(self, exc: OSError) -> None:
        if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            self._warn_fds.warn("dspex ui: accept failed: %s", exc)
            return
        # Stop accepting for a moment instead of spinning on a socket that stays readable.
        self._warn_fds.warn("dspex ui: %s; pausing new connections for 0.5 s", exc.strerror)
        self.loop.remove_reader(self.sock.fileno())
        self.loop.call_later(0.5, self._resume)

    def _resume(self) -> None:
        if not self._closed:
            self.loop.add_reader(self.sock.fileno(), self._ready)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            for conn in list(self._lingering):
                self._forget(conn)

    async def wait_closed(self) -> None:
        return None


class HardenedServer(uvicorn.Server):
    """uvicorn's server loop (signals, ticks, the access log) over an :class:`Acceptor`,
    stopping within :data:`SHUTDOWN_SECONDS`."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, limits: Limits, cap: int):
        super().__init__(config)
        self.sock = sock
        self.limits = limits
        self.registry = Registry(cap)
        self._watchdog: threading.Timer | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            self.should_exit = True
            return
        loop = asyncio.get_running_loop()
        factory = functools.partial(
            GuardedH11Protocol,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=loop,
            registry=self.registry,
            limits=self.limits,
        )
        acceptor = Acceptor(loop, self.sock, factory, self.registry)
        acceptor.start()
        self.servers = [acceptor]  # type: ignore[list-item]  # close() and wait_closed()
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, close idle connections now, give requests in flight
        :data:`GRACE_SECONDS`, then cut the rest short and drop every connection."""
        logger.info("Shutting down")
        for server in self.servers:
            server.close()
        for waiting in list(self.registry.waiting):  # no request of theirs runs
            waiting.drop()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # closes after the response of the request it runs
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GRACE_SECONDS
        while self.server_state.tasks and loop.time() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)
        if self.server_state.tasks:
            logger.warning(
                "dspex ui: stopping with %d request(s) still running", len(self.server_state.tasks)
            )
            logging.getLogger("uvicorn.error").addFilter(_not_cancelled)
            for task in self.server_state.tasks:
                task.cancel()
        for connection in list(self.server_state.connections):
            if isinstance(connection, GuardedH11Protocol):
                connection.drop()
        await self.lifespan.shutdown()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._watchdog is None:
            self._watchdog = threading.Timer(SHUTDOWN_SECONDS - 0.1, _exit_now, (128 + sig,))
            self._watchdog.daemon = True
            self._watchdog.start()


def _not_cancelled(record: logging.LogRecord) -> bool:
    """Leaves out uvicorn's traceback of each request cut short by the stop (said once)."""
    return not (record.exc_info and record.exc_info[0] is asyncio.CancelledError)


def _exit_now(code: int) -> None:
    """The watchdog: the graceful stop took too long (a request's thread still runs)."""
    try:
        os.write(2, b"dspex ui: stopped with a request still running\n")
    finally:
        os._exit(code)


def run(app: Any, sock: socket.socket, limits: Limits, *, log_level: str = "info") -> None:
    """Serve ``app`` on the listening ``sock`` until SIGTERM or Ctrl-C (blocks)."""
    budget, soft = fd_budget()
    cap = min(limits.max_connections, budget)
    if cap < 1:
        raise OSError(
            errno.EMFILE,
            f"only {soft} files may be open (ulimit -n), too few to serve the dspex UI; "
            f"raise it to at least {FD_RESERVE + 64}",
        )
    if cap < limits.max_connections:
        print(
            f"dspex ui: serving at most {cap} connections at once, not {limits.max_connections}"
            f" (ui.max_connections): this process may open {soft} files (ulimit -n)",
            file=sys.stderr,
        )
    config = uvicorn.Config(
        app,
        log_level=log_level,
        http="h11",
        lifespan="off",
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
        timeout_graceful_shutdown=GRACE_SECONDS,  # type: ignore[arg-type]
    )
    HardenedServer(config, sock, limits, cap).run()
