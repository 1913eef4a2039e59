"""OTLP JSON files, `dspex export`, and what happens when the receiver or the extra is missing."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from click.testing import CliRunner
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import dspex
from dspex import MissingExtraError, ResultStore
from dspex.cli import main
from dspex.export import INSTALL_HINT, OtlpDestination, send_experiment, trial_spans
from dspex.export import otlp as otlp_module
from dspex.export.otlp import sdk_spans
from dspex.export.spans import span_id_of, trace_id_of

from .conftest import free_port
from .expect import expected_span_count
from .receiver import LocalReceiver


def parse_otlp_json(line: str) -> ExportTraceServiceRequest:
    """Read one line of OTLP JSON with protobuf's own parser (ids back from hex to base64)."""
    data = json.loads(line)
    for resource in data["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for item in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = base64.b64encode(bytes.fromhex(item[key])).decode()
    return json_format.ParseDict(data, ExportTraceServiceRequest())


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_otlp_file_holds_one_trace_per_trial_as_the_exporter_encodes_it(recorded, tmp_path):
    path = tmp_path / "exp.otlp.jsonl"
    experiment = recorded.experiment
    result = run("export", experiment.id, "--otlp-file", str(path), "--store", recorded.store_url)
    assert result.exit_code == 0, result.output
    lines = path.read_text().splitlines()
    assert len(lines) == len(experiment.trials)
    spans_total = sum(expected_span_count(t) for t in experiment.trials)
    assert f"wrote {len(lines)} trials ({spans_total} spans) of {experiment.id}" in result.output
    for line, trial in zip(lines, experiment.trials, strict=True):
        raw = json.loads(line)
        root = raw["resourceSpans"][0]["scopeSpans"][0]["spans"][-1]  # after its children
        assert root["traceId"] == f"{trace_id_of(trial.id):032x}"
        assert root["spanId"] == f"{span_id_of(trial.id):016x}"
        assert "parentSpanId" not in root
        assert root["kind"] == 1  # SPAN_KIND_INTERNAL, as a number
        parsed = parse_otlp_json(line)
        expected = encode_spans(sdk_spans(trial_spans(trial, experiment)))
        assert parsed == expected
    resource = {
        a["key"]: a["value"]["stringValue"]
        for a in json.loads(lines[0])["resourceSpans"][0]["resource"]["attributes"]
    }
    assert resource["service.name"] == "dspex"
    assert resource["openinference.project.name"] == "dspex"


def test_a_running_experiment_exports_the_trials_it_finished(recorded, tmp_path):
    experiment = recorded.experiment
    store = ResultStore.open(f"file://{tmp_path}/running").connect()
    header = experiment.replace(status="running", trials=(), summary=None, best_trial_id=None)
    store.start_experiment(header)
    for trial in experiment.trials[:3]:
        store.record_trial(experiment.id, trial)
    path = tmp_path / "running.jsonl"
    result = run("export", experiment.id, "--otlp-file", str(path), "--store", store.url)
    assert result.exit_code == 0, result.output
    assert f"experiment {experiment.id} is running: exporting the 3 trials" in result.output
    assert len(path.read_text().splitlines()) == 3


def test_a_refusing_receiver_fails_the_command_naming_why(recorded):
    with LocalReceiver(statuses=[400]) as receiver:
        result = run(
            "export", recorded.experiment.id, "--otlp", receiver.url, "--store", recorded.store_url
        )
    assert result.exit_code == 1
    trials = len(recorded.experiment.trials)
    assert f"exported 0 of {trials} trials" in result.output
    assert f"{trials} not delivered (trials 0–{trials - 1}): HTTP 400 Bad Request" in result.output
    assert len(receiver.requests) == trials  # one request per trial: a refusal is an answer
    assert "send them again with:" in result.output


def test_headers_and_project_reach_the_receiver(recorded):
    trial = recorded.experiment.trials[1]
    seen = []
    with LocalReceiver() as receiver:
        destination = OtlpDestination(
            receiver.url, project="arith", headers={"x-mlflow-experiment-id": "7"}
        )
        seen.append(destination.send(trial_spans(trial, recorded.experiment)))
        destination.shutdown()
    assert seen == [None]
    assert receiver.headers[0]["x-mlflow-experiment-id"] == "7"
    assert receiver.headers[0]["content-type"] == "application/x-protobuf"
    (request,) = receiver.accepted
    assert len(receiver.spans) == len(trial_spans(trial, recorded.experiment))
    attributes = {
        a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes
    }
    assert attributes["openinference.project.name"] == "arith"


def test_a_receiver_that_is_down_is_reported_as_such(recorded):
    experiment = recorded.experiment
    destination = OtlpDestination(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    some = [t.id for t in experiment.trials[:2]]
    outcome = send_experiment(experiment, destination, trial_ids=some)
    assert not outcome.ok and outcome.delivered == []
    assert list(outcome.failed) == some
    assert set(outcome.failed.values()) == {"could not connect: [Errno 111] Connection refused"}


def test_with_no_destination_the_tables_are_written_here_as_csv(recorded, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("export", recorded.experiment.id, "--store", recorded.store_url)
    assert result.exit_code == 0, result.output
    experiment_id = recorded.experiment.id
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".csv") == [
        f"{experiment_id}.examples.csv",
        f"{experiment_id}.trials.csv",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--otlp", "localhost:4318"], "OTLP endpoint 'localhost:4318' is not an http://"),
        (
            ["--otlp", "https://u:pw@h/v1/traces"],
            "'https://u:***@h/v1/traces' carries a credential",
        ),
        (["--otlp", "http://h", "--header", "novalue"], "'novalue' is not NAME=VALUE"),
    ],
)
def test_bad_arguments_are_refused_clearly(recorded, args, message):
    result = run("export", recorded.experiment.id, "--store", recorded.store_url, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "pw@" not in result.output


def test_an_unknown_experiment_is_named(recorded):
    missing = dspex.new_id("exp")
    result = run("export", missing, "--otlp-file", "x.jsonl", "--store", recorded.store_url)
    assert result.exit_code == 1
    assert f"no experiment with id {missing!r}" in result.output


@pytest.fixture
def without_otel(monkeypatch):
    """As if the dspex[otel] extra were not installed: its OTLP exporter cannot be imported."""
    otlp_module._sdk.cache_clear()
    monkeypatch.delitem(sys.modules, "dspex.export._otel", raising=False)
    # None in sys.modules makes importing it raise ImportError
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    yield
    otlp_module._sdk.cache_clear()


def test_without_the_extra_exporting_says_how_to_install_it(recorded, tmp_path, without_otel):
    result = run(
        "export", recorded.experiment.id, "--otlp-file", str(tmp_path / "x"),
        "--store", recorded.store_url,
    )  # fmt: skip
    assert result.exit_code == 1
    assert INSTALL_HINT in result.output and "pip install 'dspex[otel]'" in result.output
    with pytest.raises(MissingExtraError, match=r"pip install 'dspex\[otel\]'"):
        OtlpDestination("http://127.0.0.1:6006").send([])


def test_without_the_extra_a_live_export_stops_the_experiment_before_it_runs(without_otel):
    store = ResultStore.open("memory://")
    dspex.configure(export={"otlp_endpoint": "http://127.0.0.1:6006"})
    with pytest.raises(MissingExtraError, match=r"pip install 'dspex\[otel\]'"):
        with dspex.experiment("needs-otel", program_name="qa", store=store):
            pytest.fail("the block must not run")
    assert store.count_experiments() == 0


def test_spans_that_ended_well_are_ok_and_failed_ones_errors(recorded):
    from opentelemetry.trace import StatusCode

    seen = set()
    for trial in recorded.experiment.trials:
        records = trial_spans(trial, recorded.experiment)
        for record, span in zip(reversed(records), sdk_spans(records), strict=True):
            if record.error is not None:
                assert span.status.status_code is StatusCode.ERROR
            elif record.attributes.get("dspex.unfinished"):
                assert span.status.status_code is StatusCode.UNSET
            else:
                assert span.status.status_code is StatusCode.OK, record.name
            seen.add(span.status.status_code)
    assert StatusCode.OK in seen


def test_decisions_are_span_events_named_by_strategy_and_outcome(recorded):
    names = set()
    for trial in recorded.experiment.trials:
        records = trial_spans(trial, recorded.experiment)
        events = {e.attributes["dspex.event_id"]: e for r in records for e in r.events}
        for decision in (e for e in trial.events if e.kind.value == "decision"):
            shown = events[decision.id]
            payload = decision.payload
            by = payload["strategy"] or payload["optimizer"]
            assert shown.name.startswith(f"dspex.decision.{by.lower()}"), shown.name
            assert shown.attributes["dspex.kind"] == "decision"
            if (payload.get("details") or {}).get("skipped") is True:
                assert shown.name.endswith(".no_change")
            names.add(shown.name)
    assert "dspex.decision" not in names
    assert {"dspex.decision.append_a_rule", "dspex.decision.append_a_demo"} <= names
