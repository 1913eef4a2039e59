"""A SIMBA experiment exported to a real Phoenix server, read back with Phoenix's own client."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from click.testing import CliRunner

from dspex.cli import main
from dspex.export import OtlpDestination, trial_spans
from dspex.export.spans import span_id_of, trace_id_of
from tests.view.fixtures import simba_experiment

from .conftest import phoenix_spans
from .expect import created_candidate, events_of, expected_parent, expected_span_count, span_events

# a real server, started once per session: its start-up counts against the first test
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROJECT = "simba-export"


@pytest.fixture(scope="module")
def exported(recorded, phoenix):
    """The recorded experiment, exported with `dspex export --otlp`, and Phoenix's spans."""
    result = CliRunner().invoke(
        main,
        ["export", recorded.experiment.id, "--otlp", phoenix.url, "--project", PROJECT,
         "--store", recorded.store_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert " score annotations" in result.output  # found to be Phoenix: scores annotated
    expected = sum(expected_span_count(t) for t in recorded.experiment.trials)
    return recorded.experiment, phoenix_spans(phoenix, PROJECT, recorded.experiment), expected


def trace_of(spans, trial):
    trace_id = f"{trace_id_of(trial.id):032x}"
    return [s for s in spans if s["context"]["trace_id"] == trace_id]


def test_every_event_that_maps_to_a_span_is_a_span_in_phoenix(exported):
    experiment, spans, expected = exported
    assert len(spans) == expected
    for trial in experiment.trials:
        assert len(trace_of(spans, trial)) == 1 + len(span_events(trial)), trial.name
    roots = [s for s in spans if s.get("parent_id") is None]
    assert sorted(s["attributes"]["dspex.trial_id"] for s in roots) == sorted(
        t.id for t in experiment.trials
    )
    assert {s["attributes"]["session.id"] for s in roots} == {experiment.id}
    assert {s["span_kind"] for s in spans} == {"CHAIN", "LLM", "EVALUATOR"}


def test_spans_nest_in_phoenix_as_recorded(exported):
    experiment, spans, _ = exported
    for trial in experiment.trials:
        trace = trace_of(spans, trial)
        by_event = {s["attributes"]["dspex.event_id"]: s for s in trace if s.get("parent_id")}
        root_id = f"{span_id_of(trial.id):016x}"
        for event in span_events(trial):
            parent = expected_parent(trial, event)
            want = root_id if parent is None else by_event[parent]["context"]["span_id"]
            assert by_event[event.id]["parent_id"] == want, (trial.name, event.kind)


def test_module_spans_keep_their_recorded_times(exported):
    experiment, spans, _ = exported
    trial = experiment.trials[-1]  # the final evaluation
    by_event = {s["attributes"].get("dspex.event_id"): s for s in trace_of(spans, trial)}
    ends = {e.payload["start_id"]: e for e in events_of(trial, "module_end")}
    for start in events_of(trial, "module_start"):
        span = by_event[start.id]
        assert datetime.fromisoformat(span["start_time"]) == start.timestamp
        assert datetime.fromisoformat(span["end_time"]) == ends[start.id].timestamp


def test_an_lm_span_has_its_prompt_messages_tokens_and_model(exported):
    experiment, spans, _ = exported
    trial = next(t for t in experiment.trials if created_candidate(t) and events_of(t, "lm_call"))
    call = events_of(trial, "lm_call")[0]  # SIMBA's OfferFeedback call that wrote the rule
    (span,) = [
        s for s in trace_of(spans, trial) if s["attributes"].get("dspex.event_id") == call.id
    ]
    attributes = span["attributes"]
    assert span["span_kind"] == "LLM"
    assert attributes["llm.model_name"] == call.payload["model"]
    for i, message in enumerate(call.payload["messages"]):
        assert attributes[f"llm.input_messages.{i}.message.role"] == message["role"]
        assert attributes[f"llm.input_messages.{i}.message.content"] == message["content"]
    assert attributes["llm.output_messages.0.message.content"] == call.payload["response"][0]
    usage = call.payload["usage"]
    assert attributes["llm.token_count.prompt"] == usage["prompt_tokens"]
    assert attributes["llm.token_count.completion"] == usage["completion_tokens"]
    assert attributes["llm.token_count.total"] == usage["total_tokens"]


def test_each_candidate_carries_the_decisions_that_created_it(exported):
    experiment, spans, _ = exported
    candidates = [t for t in experiment.trials if created_candidate(t) and t.parent_trial_ids]
    assert len(candidates) >= 6
    for trial in candidates:
        (root,) = [s for s in trace_of(spans, trial) if s.get("parent_id") is None]
        assert root["attributes"]["dspex.strategy"] == created_candidate(trial)["strategy"]
        assert root["attributes"]["dspex.parent_trial_ids"] == list(trial.parent_trial_ids)
        decisions = [e for e in root["events"] if e["name"].startswith("dspex.decision")]
        recorded = events_of(trial, "decision")
        assert len(decisions) == len(recorded) >= 2
        for shown, decision in zip(decisions, recorded, strict=True):
            for field in ("decision", "strategy", "rationale", "action"):
                assert shown["attributes"][f"dspex.{field}"] == decision.payload[field]


def test_exporting_again_keeps_one_copy(exported, recorded, phoenix):
    experiment, _, expected = exported
    result = CliRunner().invoke(
        main,
        ["export", experiment.id, "--otlp", phoenix.url, "--project", PROJECT,
         "--store", recorded.store_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # Phoenix inserts in arrival order: once a trace sent after the second copy is in,
    # the copy has been dealt with
    marker = simba_experiment()
    marker_spans = trial_spans(marker.trials[0], marker)
    destination = OtlpDestination(phoenix.url, project=PROJECT)
    assert destination.send(marker_spans) is None
    destination.shutdown()
    marker_trace = f"{trace_id_of(marker.trials[0].id):032x}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = phoenix.client.spans.get_spans(
            project_identifier=PROJECT, trace_ids=[marker_trace], limit=len(marker_spans) + 10
        )
        if len(got) == len(marker_spans):
            break
        time.sleep(0.5)
    everything = phoenix.client.spans.get_spans(project_identifier=PROJECT, limit=expected + 500)
    assert len(everything) == expected + len(marker_spans)


def test_scores_are_phoenix_span_annotations_and_statuses_ok(exported, phoenix):
    """Detected as Phoenix, the export annotates each trial's root span with its score
    and scope, and each example's span with its value: Phoenix sorts and filters by them."""
    from dspex.export.spans import span_id_of
    from dspex.model.scopes import scope_of

    experiment, spans, _ = exported
    scored = [t for t in experiment.trials if t.score is not None]
    assert scored
    ids = {f"{span_id_of(t.id):016x}": t for t in scored}
    examples = {
        f"{span_id_of(e.id):016x}": e
        for t in scored
        for e in t.events
        if e.kind.value == "example_result"
    }
    found = phoenix.client.spans.get_span_annotations(
        span_ids=[*ids, *examples], project_identifier=PROJECT, limit=10000
    )
    by_span = {}
    for annotation in found:
        by_span.setdefault(annotation["span_id"], {})[annotation["name"]] = annotation
    for span_id, trial in ids.items():
        annotation = by_span[span_id]["dspex.score"]
        scope = scope_of(trial)
        assert annotation["result"]["score"] == trial.score
        assert annotation["result"]["label"] == f"{scope.name} (n={scope.n})"
    for span_id, event in examples.items():
        annotation = by_span[span_id]["dspex.example_score"]
        assert annotation["result"]["score"] == event.payload["value"]
        assert annotation["result"]["label"] == ("passed" if event.payload["passed"] else "failed")
    statuses = {s["status_code"] for s in spans}
    assert "OK" in statuses  # spans that ended well say so (they were unset, shown "-")
