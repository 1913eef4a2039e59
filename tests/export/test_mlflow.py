"""The same export received by a real MLflow tracking server, read back with mlflow.get_trace."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dspex.cli import main
from dspex.export.spans import trace_id_of

from .expect import created_candidate, events_of, expected_span_count

# a real server, started once per session: its start-up counts against the first test
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def mlflow_client(mlflow_server):
    """mlflow pointed at the server for one test (the tracking URI is process-wide)."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server)
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(previous)


def test_mlflow_receives_every_trial_as_a_trace(recorded, mlflow_server, mlflow_client):
    experiment = recorded.experiment
    mlflow_experiment = mlflow_client.MlflowClient().create_experiment("dspex-simba")
    result = CliRunner().invoke(
        main,
        ["export", experiment.id, "--otlp", mlflow_server,
         "--header", f"x-mlflow-experiment-id={mlflow_experiment}",
         # MLflow stores each trace in one transaction: slow on a busy machine
         "--timeout", "120",
         "--store", recorded.store_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    for trial in experiment.trials:
        trace = mlflow_client.get_trace(f"tr-{trace_id_of(trial.id):032x}")
        assert trace is not None, trial.name
        assert trace.info.experiment_id == mlflow_experiment
        spans = trace.data.spans
        assert len(spans) == expected_span_count(trial), trial.name
        (root,) = [s for s in spans if s.parent_id is None]
        assert root.name == trial.name
        assert root.attributes["dspex.trial_id"] == trial.id
        assert len([s for s in spans if s.span_type == "LLM"]) == len(events_of(trial, "lm_call"))
        evaluators = [s for s in spans if s.span_type == "EVALUATOR"]
        assert len(evaluators) == len(events_of(trial, "example_result"))

    candidate = next(t for t in experiment.trials if created_candidate(t) and t.parent_trial_ids)
    trace = mlflow_client.get_trace(f"tr-{trace_id_of(candidate.id):032x}")
    (root,) = [s for s in trace.data.spans if s.parent_id is None]
    decisions = [e for e in root.events if e.name.startswith("dspex.decision")]
    assert [e.attributes["dspex.rationale"] for e in decisions] == [
        e.payload["rationale"] for e in events_of(candidate, "decision")
    ]
    call = events_of(candidate, "lm_call")[0]
    (llm,) = [s for s in trace.data.spans if s.attributes.get("dspex.event_id") == call.id]
    inputs = llm.inputs if not isinstance(llm.inputs, str) else json.loads(llm.inputs)
    assert inputs == call.payload["messages"]  # MLflow reads OpenInference's input.value
