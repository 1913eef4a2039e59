"""OpenTelemetry's side: span records as SDK spans, sent over OTLP/HTTP or written as OTLP JSON.

Everything here uses the OpenTelemetry SDK and its OTLP exporter, from the optional
extra ``pip install 'dspex[otel]'``, imported on first use (a clear
:class:`~dspex.errors.ExportError` with the install command when it is missing)::

    destination = OtlpDestination("http://127.0.0.1:6006", project="arith")
    problem = destination.send(spans)        # None: delivered; else why not
    lines = otlp_json_lines([spans])         # one OTLP JSON ExportTraceServiceRequest each

Headers (``Authorization``, ``x-mlflow-experiment-id``) come from the ``headers``
argument and from ``OTEL_EXPORTER_OTLP_TRACES_HEADERS``/``OTEL_EXPORTER_OTLP_HEADERS``,
the request timeout (with the exporter's retries) from ``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import Any

from dspex.config.schema import check_otlp_endpoint
from dspex.errors import ExportError
from dspex.export.spans import SpanRecord
from dspex.extras import require
from dspex.redact import redact_url

__all__ = [
    "INSTALL_HINT",
    "OtlpDestination",
    "otlp_json_lines",
    "require_sdk",
    "sdk_spans",
    "traces_url",
]

INSTALL_HINT = "pip install 'dspex[otel]'"


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of ``endpoint``: a base URL gets ``/v1/traces``.

    >>> traces_url("http://127.0.0.1:6006/")
    'http://127.0.0.1:6006/v1/traces'
    >>> traces_url("https://cloud.langfuse.com/api/public/otel/v1/traces")
    'https://cloud.langfuse.com/api/public/otel/v1/traces'
    """
    try:
        check_otlp_endpoint(endpoint)
    except ValueError as exc:
        raise ExportError(str(exc)) from exc
    url = endpoint.rstrip("/")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


@cache
def _sdk() -> ModuleType:
    """The OpenTelemetry names this module uses (:mod:`dspex.export._otel`), imported once."""
    purpose = "exporting OpenTelemetry traces"
    return require("dspex.export._otel", "otel", purpose, packages=("opentelemetry",))


def require_sdk() -> None:
    """Raise :class:`~dspex.MissingExtraError` with the install command unless the
    OpenTelemetry SDK and OTLP exporter can be imported."""
    _sdk()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dspex")
    except PackageNotFoundError:
        return ""


@cache
def _resource(project: str) -> Any:
    sdk = _sdk()
    return sdk.Resource.create(
        {
            "service.name": "dspex",
            "service.version": _version(),
            "openinference.project.name": project,
        }
    )


def sdk_spans(records: Iterable[SpanRecord], *, project: str = "dspex") -> list[Any]:
    """The OpenTelemetry SDK's ``ReadableSpan`` of each record, children before parents.

    The spans are built directly rather than through a ``Tracer``: they are finished
    records whose ids and times are already known, which is what exporters consume.
    They come out in the reverse of the records' order (a trial's spans are in start
    order, its root first), as a live tracer sends them: a span after its children.
    Phoenix, for one, then has no ancestors' totals to update as each span arrives.
    """
    sdk = _sdk()
    resource = _resource(project)
    scope = sdk.InstrumentationScope("dspex.export", _version())
    sampled = sdk.TraceFlags(sdk.TraceFlags.SAMPLED)

    def context(trace_id: int, span_id: int) -> Any:
        return sdk.SpanContext(trace_id, span_id, is_remote=False, trace_flags=sampled)

    spans = []
    for record in reversed(list(records)):
        parent = record.parent_span_id
        status = (
            sdk.Status(sdk.StatusCode.ERROR, record.error)
            if record.error is not None
            else sdk.Status(sdk.StatusCode.UNSET)
            if record.attributes.get("dspex.unfinished")
            else sdk.Status(sdk.StatusCode.OK)  # it ended, and well: say so
        )
        spans.append(
            sdk.ReadableSpan(
                name=record.name,
                context=context(record.trace_id, record.span_id),
                parent=None if parent is None else context(record.trace_id, parent),
                resource=resource,
                attributes=record.attributes,
                events=[sdk.Event(e.name, e.attributes, e.time_ns) for e in record.events],
                links=[
                    sdk.Link(context(link.trace_id, link.span_id), link.attributes)
                    for link in record.links
                ],
                kind=sdk.SpanKind.CLIENT if record.kind == "client" else sdk.SpanKind.INTERNAL,
                status=status,
                start_time=record.start_ns,
                end_time=record.end_ns,
                instrumentation_scope=scope,
            )
        )
    return spans


class _SendingThreads(logging.Filter):
    """Drops the OTLP exporter's log records (each retry, each failure) of the threads
    sending for dspex, which reports the outcome itself; other threads' stay."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.threads


_sending = _SendingThreads()
# the exporter logs through its own module's logger, and its HTTP client through this one
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
)


@contextmanager
def _quietly() -> Iterator[None]:
    for name in _EXPORTER_LOGGERS:
        logging.getLogger(name).addFilter(_sending)  # once: a filter is added only once
    ident = threading.get_ident()
    _sending.threads.add(ident)
    try:
        yield
    finally:
        _sending.threads.discard(ident)


class OtlpDestination:
    """An OTLP/HTTP receiver. Cheap to make (validates the URL); connects on :meth:`send`."""

    def __init__(
        self,
        endpoint: str,
        *,
        project: str = "dspex",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = traces_url(endpoint)
        self.project = project
        self._headers = dict(headers or {})
        self._timeout = timeout
        self._listeners: list[Callable[[str], None]] = []
        self._exporter: Any = None
        self._session: Any = None
        self._closed = False
        self._lock = threading.Lock()

    def add_failure_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` (from the sending thread) with the reason of each failed
        request as it happens, while the exporter may still be retrying."""
        self._listeners.append(listener)

    def _failed(self, reason: str) -> None:
        for listener in self._listeners:
            listener(reason)

    @property
    def headers(self) -> dict[str, str]:
        """The headers given for every request (for other requests to the same server)."""
        return dict(self._headers)

    @property
    def shown_url(self) -> str:
        """The URL as messages show it (never a credential)."""
        return redact_url(self.url)

    def _open(self) -> Any:
        with self._lock:
            if self._closed:
                return None
            if self._exporter is None:
                sdk = _sdk()
                self._session = sdk.WatchedSession(self._failed)
                self._exporter = sdk.OTLPSpanExporter(
                    endpoint=self.url,
                    headers=self._headers or None,
                    timeout=self._timeout,
                    session=self._session,
                )
            return self._exporter

    def send(self, spans: list[SpanRecord], *, deadline: float | None = None) -> str | None:
        """Send ``spans`` in one request (the exporter retries transient failures).

        Returns None when the receiver took them, else the reason it did not;
        :attr:`unreachable` then says whether the receiver was reached at all. With a
        ``deadline`` (a :func:`time.monotonic` time) no request waits past it.
        """
        exporter = self._open()
        if exporter is None:
            return "the export was stopped (the experiment ended)"
        self._session.last_failure = None
        self._session.unreachable = False
        self._session.deadline = deadline
        with _quietly():
            result = exporter.export(sdk_spans(spans, project=self.project))
        if result is _sdk().SpanExportResult.SUCCESS:
            return None
        return self._session.last_failure or "the receiver did not accept the spans"

    @property
    def unreachable(self) -> bool:
        """Whether the last failed send never reached the receiver: no connection, no
        answer in time, or a gateway's 502, 503 or 504."""
        return self._session is not None and bool(self._session.unreachable)

    def shutdown(self) -> None:
        """Stop for good: an export in flight gives up its retries, later sends fail."""
        with self._lock:
            self._closed = True
            exporter, self._exporter = self._exporter, None
        if exporter is not None:
            exporter.shutdown()


def otlp_json_lines(
    batches: Iterable[list[SpanRecord]], *, project: str = "dspex"
) -> Iterator[str]:
    """Each batch of spans as one line of OTLP JSON (an ``ExportTraceServiceRequest``).

    This is the OTLP/HTTP JSON encoding (ids as hex, enums as numbers), one request per
    line as the OpenTelemetry Collector's ``otlpjsonfile`` receiver reads it.
    """
    sdk = _sdk()
    for spans in batches:
        request = sdk.encode_spans(sdk_spans(spans, project=project))
        data = sdk.MessageToDict(request, use_integers_for_enums=True)
        for resource_spans in data.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    _hex_ids(span)
                    for link in span.get("links", []):
                        _hex_ids(link)
        yield json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _hex_ids(item: dict[str, Any]) -> None:
    # protobuf's JSON mapping writes bytes as base64; OTLP JSON wants trace and span ids as hex
    for key in ("traceId", "spanId", "parentSpanId"):
        if item.get(key):
            item[key] = base64.b64decode(item[key]).hex()
