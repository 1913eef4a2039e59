"""The OpenTelemetry names dspex.export uses, in one module imported on first use.

Importing this module needs the ``dspex[otel]`` extra; :func:`dspex.export.otlp._sdk`
turns its ImportError into an install hint.
"""

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from dspex.export._session import WatchedSession

__all__ = [
    "Event",
    "InstrumentationScope",
    "Link",
    "MessageToDict",
    "OTLPSpanExporter",
    "ReadableSpan",
    "Resource",
    "SpanContext",
    "SpanExportResult",
    "SpanKind",
    "Status",
    "StatusCode",
    "TraceFlags",
    "WatchedSession",
    "encode_spans",
]
