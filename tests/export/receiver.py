"""A small OTLP/HTTP receiver on a loopback port, for what real receivers do rarely.

It parses each request as OTLP protobuf (``ExportTraceServiceRequest``) and answers
with the next status of ``statuses`` (the last one repeats): a receiver that refuses,
then accepts. ``hang=True`` accepts connections and never answers.

    with LocalReceiver(statuses=[400, 200]) as receiver:
        ...  # export to receiver.url
        receiver.spans  # every span it answered 200 to
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class LocalReceiver:
    def __init__(self, statuses: Sequence[int] = (200,), *, hang: bool = False) -> None:
        self.statuses = list(statuses)
        self.hang = hang
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.accepted: list[ExportTraceServiceRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._socket: socket.socket | None = None
        self.url = ""

    @property
    def spans(self) -> list[Any]:
        return [
            span
            for request in self.accepted
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def _answer(self, body: bytes, headers: dict[str, str]) -> int:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self._lock:
            self.headers.append(headers)
            status = self.statuses[min(len(self.requests), len(self.statuses) - 1)]
            self.requests.append(request)
            if status == 200:
                self.accepted.append(request)
        return status

    def __enter__(self) -> LocalReceiver:
        if self.hang:  # listens, so connections succeed, but nobody ever reads or answers
            self._socket = socket.socket()
            self._socket.bind(("127.0.0.1", 0))
            self._socket.listen(64)
            self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
            return self
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._answer(body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._socket is not None:
            self._socket.close()
