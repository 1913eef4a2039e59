"""Experiments out of dspex, as OpenTelemetry traces that Phoenix, Langfuse and MLflow read.

One trace per trial (see :mod:`dspex.export.mapping` and ``docs/interop.md``), built from
records only, sent with the OpenTelemetry SDK's OTLP/HTTP exporter (``pip install
'dspex[otel]'``) or written as OTLP JSON::

    from dspex.export import OtlpDestination, send_experiment, write_otlp_json
    experiment = dspex.ResultStore.default().get_experiment("exp_...")
    send_experiment(experiment, OtlpDestination("http://127.0.0.1:6006")).summary()
    write_otlp_json(experiment, Path("exp.otlp.jsonl"))

While an experiment runs, ``export.otlp_endpoint`` makes the journal send each trial as
it finishes (:class:`LiveOtlpExporter`, a :class:`TrialSink`).
"""

from dspex.export.live import LiveOtlpExporter
from dspex.export.mapping import SPAN_OPENING_KINDS, experiment_spans, trial_spans
from dspex.export.otlp import INSTALL_HINT, OtlpDestination, otlp_json_lines, traces_url
from dspex.export.send import ExportOutcome, GiveUp, send_experiment, write_otlp_json
from dspex.export.sink import TrialSink, trial_sink_from_settings
from dspex.export.spans import SpanEventRecord, SpanLinkRecord, SpanRecord

__all__ = [
    "INSTALL_HINT",
    "SPAN_OPENING_KINDS",
    "ExportOutcome",
    "GiveUp",
    "LiveOtlpExporter",
    "OtlpDestination",
    "SpanEventRecord",
    "SpanLinkRecord",
    "SpanRecord",
    "TrialSink",
    "experiment_spans",
    "otlp_json_lines",
    "send_experiment",
    "traces_url",
    "trial_sink_from_settings",
    "trial_spans",
    "write_otlp_json",
]
