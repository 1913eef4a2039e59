"""The mapping from records to spans, checked against the records themselves."""

from __future__ import annotations

import json

from openinference.semconv.trace import (
    MessageAttributes,
    OpenInferenceSpanKindValues,
    SpanAttributes,
)

from dspex import ErrorInfo, Experiment, ProgramInfo, TraceEvent, Trial, new_id
from dspex.export import experiment_spans, trial_spans
from dspex.export.spans import span_id_of, time_ns, trace_id_of
from dspex.model.spans import span_tree
from tests.view.fixtures import simba_experiment

from .expect import created_candidate, events_of, expected_parent, expected_span_count, span_events


def by_event(spans):
    return {s.attributes["dspex.event_id"]: s for s in spans[1:]}


def test_one_trace_per_trial_with_a_span_per_call_and_example(recorded):
    experiment = recorded.experiment
    trace_ids = set()
    for trial, spans in experiment_spans(experiment):
        root = spans[0]
        assert root.parent_span_id is None and root.span_id == span_id_of(trial.id)
        assert {s.trace_id for s in spans} == {trace_id_of(trial.id)}
        assert len(spans) == expected_span_count(trial)
        assert set(by_event(spans)) == {e.id for e in span_events(trial)}
        trace_ids.add(root.trace_id)
    assert len(trace_ids) == len(experiment.trials) > 20
    kinds = {
        s.attributes["openinference.span.kind"]
        for _, spans in experiment_spans(experiment)
        for s in spans
    }
    assert kinds == {"CHAIN", "LLM", "EVALUATOR"}


def test_spans_nest_as_recorded(recorded):
    for trial in recorded.experiment.trials:
        spans = trial_spans(trial, recorded.experiment)
        ids = by_event(spans)
        for event in span_events(trial):
            parent = expected_parent(trial, event)
            want = spans[0].span_id if parent is None else ids[parent].span_id
            assert ids[event.id].parent_span_id == want, (trial.name, event.kind, event.id)


def test_spans_keep_the_recorded_start_times_and_durations(recorded):
    for trial in recorded.experiment.trials:
        spans = trial_spans(trial, recorded.experiment)
        ids = by_event(spans)
        ends = {e.payload["start_id"]: e for e in events_of(trial, "module_end")}
        for start in events_of(trial, "module_start"):
            span = ids[start.id]
            assert span.start_ns == time_ns(start.timestamp)
            assert span.end_ns == time_ns(ends[start.id].timestamp)
        runs = {example: run for run, example in span_tree(trial.events).scored_runs.items()}
        for call in events_of(trial, "lm_call") + events_of(trial, "example_result"):
            span = ids[call.id]
            assert span.end_ns == time_ns(call.timestamp)
            latency_ns = call.payload["latency_ms"] * 1_000_000
            if call.id in runs:  # an example's span starts with the run it scored
                run = next(e for e in trial.events if e.id == runs[call.id])
                want = min(time_ns(run.timestamp), span.end_ns - latency_ns)
                assert abs(span.start_ns - want) < 1000
                continue
            assert abs((span.end_ns - span.start_ns) - latency_ns) < 1
        root = spans[0]
        assert root.start_ns <= time_ns(trial.started_at)
        assert root.end_ns >= time_ns(trial.finished_at)
        assert all(root.start_ns <= s.start_ns and s.end_ns <= root.end_ns for s in spans)


def test_an_lm_span_carries_its_messages_tokens_model_and_settings(recorded):
    trial = next(t for t in recorded.experiment.trials if events_of(t, "lm_call"))
    call = events_of(trial, "lm_call")[0]
    span = by_event(trial_spans(trial, recorded.experiment))[call.id]
    attrs, payload = span.attributes, call.payload
    assert span.name == f"chat {payload['model']}" and span.kind == "client"
    assert attrs["openinference.span.kind"] == "LLM"
    assert attrs["llm.model_name"] == attrs["gen_ai.request.model"] == payload["model"]
    for i, message in enumerate(payload["messages"]):
        assert attrs[f"llm.input_messages.{i}.message.role"] == message["role"]
        assert attrs[f"llm.input_messages.{i}.message.content"] == message["content"]
    assert f"llm.input_messages.{len(payload['messages'])}.message.role" not in attrs
    assert attrs["llm.output_messages.0.message.content"] == payload["response"][0]
    usage = payload["usage"]
    assert attrs["llm.token_count.prompt"] == attrs["gen_ai.usage.input_tokens"]
    assert attrs["llm.token_count.prompt"] == usage["prompt_tokens"]
    assert attrs["llm.token_count.completion"] == usage["completion_tokens"]
    assert attrs["llm.token_count.total"] == usage["total_tokens"]
    assert json.loads(attrs["llm.invocation_parameters"]) == payload["settings"]
    assert json.loads(attrs["input.value"]) == payload["messages"]
    assert attrs["dspex.module"] == payload["module"]


def test_each_candidates_decisions_are_events_on_its_span(recorded):
    candidates = [t for t in recorded.experiment.trials if created_candidate(t)]
    strategies = set()
    for trial in candidates:
        root = trial_spans(trial, recorded.experiment)[0]
        decisions = [e for e in root.events if e.name.startswith("dspex.decision")]
        recorded_decisions = events_of(trial, "decision")
        assert len(decisions) == len(recorded_decisions)
        for event, decision in zip(decisions, recorded_decisions, strict=True):
            for field in ("decision", "strategy", "rationale", "action"):
                if decision.payload.get(field) is not None:
                    assert event.attributes[f"dspex.{field}"] == decision.payload[field]
            assert event.attributes["dspex.event_id"] == decision.id
            assert event.time_ns == time_ns(decision.timestamp)
        strategy = created_candidate(trial)["strategy"]
        if strategy:
            assert root.attributes["dspex.strategy"] == strategy
            strategies.add(strategy)
    assert {"append_a_rule", "append_a_demo"} <= strategies


def test_scores_on_the_trial_span_and_evaluator_spans_per_example(recorded):
    for trial in recorded.experiment.trials:
        spans = trial_spans(trial, recorded.experiment)
        if trial.score is not None:
            assert spans[0].attributes["dspex.score"] == trial.score
        examples = events_of(trial, "example_result")
        evaluators = [s for s in spans if s.attributes["openinference.span.kind"] == "EVALUATOR"]
        assert len(evaluators) == len(examples)
        ids = by_event(spans)
        for event in examples:
            span = ids[event.id]
            assert span.attributes["dspex.score"] == event.payload["value"]
            assert span.attributes["dspex.example"] == event.payload["example"]
            assert span.name == f"example {event.payload['example']}"
            assert json.loads(span.attributes["input.value"])["labels"] == event.payload["labels"]


def test_dspex_ids_are_on_every_span_and_ids_are_stable(recorded):
    experiment = recorded.experiment
    first = [s for _, spans in experiment_spans(experiment) for s in spans]
    again = [s for _, spans in experiment_spans(experiment) for s in spans]
    assert [(s.trace_id, s.span_id, s.parent_span_id) for s in first] == [
        (s.trace_id, s.span_id, s.parent_span_id) for s in again
    ]
    assert len({s.span_id for s in first}) == len(first)
    for span in first:
        assert span.attributes["dspex.experiment_id"] == experiment.id
        assert span.attributes["dspex.trial_id"].startswith("trl_")
    for trial in experiment.trials:
        root = trial_spans(trial, experiment)[0]
        assert root.attributes["session.id"] == experiment.id
        assert [(link.trace_id, link.span_id) for link in root.links] == [
            (trace_id_of(p), span_id_of(p)) for p in trial.parent_trial_ids
        ]
        if trial.parent_trial_ids:
            assert root.attributes["dspex.parent_trial_ids"] == list(trial.parent_trial_ids)


def test_attribute_names_are_openinference_ones(recorded):
    """Names outside dspex.* and gen_ai.* are the OpenInference package's own."""
    known = {v for k, v in vars(SpanAttributes).items() if k.isupper()}
    message = {v for k, v in vars(MessageAttributes).items() if k.isupper()}
    kinds = {k.value for k in OpenInferenceSpanKindValues}
    for _, spans in experiment_spans(recorded.experiment):
        for span in spans:
            assert span.attributes["openinference.span.kind"] in kinds
            for name in span.attributes:
                if name.startswith(("dspex.", "gen_ai.")):
                    continue
                if name.startswith(("llm.input_messages.", "llm.output_messages.")):
                    _, _, index, rest = name.split(".", 3)
                    assert index.isdigit() and rest in message, name
                    continue
                assert name in known, name


def test_no_attribute_name_nests_inside_another(recorded):
    # Phoenix stores attributes as a tree: "a.b" next to "a.b.c" would collide
    for _, spans in experiment_spans(recorded.experiment):
        for span in spans:
            names = set(span.attributes)
            for name in names:
                parts = name.split(".")
                prefixes = {".".join(parts[:i]) for i in range(1, len(parts))}
                assert not prefixes & names, name


# -- recorded situations beyond a plain SIMBA run ---------------------------------------


def event(trial_id, sequence, kind, payload, *, parent=None, at=None, source="execution"):
    from dspex import utc_now

    return TraceEvent(
        trial_id=trial_id, sequence=sequence, timestamp=at or utc_now(), monotonic_ns=sequence,
        source=source, kind=kind, pid=1, worker="main", payload=payload, parent_id=parent,
    )  # fmt: skip


def one_trial(events_for, **fields):
    experiment_id, trial_id = new_id("exp"), new_id("trl")
    events = events_for(trial_id)
    trial = Trial(
        id=trial_id, experiment_id=experiment_id, index=0, name="t",
        started_at=events[0].timestamp if events else fields.pop("started_at"),
        finished_at=events[-1].timestamp if events else None, events=tuple(events), **fields,
    )  # fmt: skip
    experiment = Experiment(id=experiment_id, name="e", program=ProgramInfo(name="p"))
    return trial, experiment


def test_failing_examples_calls_and_trials_are_errors_with_their_traceback():
    experiment = simba_experiment()
    trial = experiment.trials[3]  # its example 1 failed to parse
    spans = trial_spans(trial, experiment)
    failed = [s for s in spans if s.error]
    assert {s.attributes["openinference.span.kind"] for s in failed} == {"EVALUATOR", "CHAIN"}
    example = next(s for s in failed if s.attributes["openinference.span.kind"] == "EVALUATOR")
    assert example.error.startswith("dspy.utils.exceptions.AdapterParseError: LM response")
    (exception,) = [e for e in example.events if e.name == "exception"]
    assert "Traceback (most recent call last)" in exception.attributes["exception.stacktrace"]

    failed_trial = trial.replace(
        status="failed",
        error=ErrorInfo(type="builtins.RuntimeError", message="boom", traceback="tb"),
    )
    root = trial_spans(failed_trial, experiment)[0]
    assert root.error == "builtins.RuntimeError: boom"
    (failure,) = [e for e in root.events if e.name == "exception"]
    assert failure.attributes["exception.stacktrace"] == "tb"
    assert failure.time_ns == time_ns(failed_trial.finished_at)


def test_unfinished_and_unpaired_module_calls_tools_logs_and_errors():
    def events_for(trial_id):
        start = event(trial_id, 0, "module_start", {"module": "agent", "inputs": {"q": "x"}})
        return [
            start,
            event(
                trial_id,
                1,
                "tool_call",
                {"tool": "search", "args": {"query": "x"}, "result": ["a"], "latency_ms": 2.0},
                parent=start.id,
            ),  # fmt: skip
            event(trial_id, 2, "log", {"level": "info", "message": "hi"}, parent=start.id),
            event(
                trial_id,
                3,
                "error",
                {"type": "ValueError", "message": "bad", "traceback": "t"},
                parent=start.id,
            ),  # fmt: skip
            event(trial_id, 4, "module_end", {"module": "orphan", "latency_ms": 1.0}),
        ]

    trial, experiment = one_trial(events_for)
    spans = trial_spans(trial, experiment)
    assert len(spans) == expected_span_count(trial) == 4
    agent, tool, orphan = spans[1:]
    assert agent.attributes["dspex.unfinished"] is True
    assert agent.end_ns == time_ns(trial.finished_at)
    assert agent.error == "ValueError: bad"
    assert [e.name for e in agent.events] == ["dspex.log", "exception"]
    assert agent.events[0].attributes == {
        "dspex.level": "info", "dspex.message": "hi", "dspex.event_id": trial.events[2].id
    }  # fmt: skip
    assert tool.name == "execute_tool search" and tool.parent_span_id == agent.span_id
    assert tool.attributes["openinference.span.kind"] == "TOOL"
    assert tool.attributes["tool.name"] == tool.attributes["gen_ai.tool.name"] == "search"
    assert json.loads(tool.attributes["input.value"]) == {"query": "x"}
    assert orphan.name == "orphan" and orphan.parent_span_id == spans[0].span_id
    assert orphan.end_ns - orphan.start_ns == 1_000_000


SECRETS = ("sk-SECRET1", "SECRET2", "sk-SECRET3", "SECRET4", "SECRET5")


def secret_trial():
    def events_for(trial_id):
        return [
            event(
                trial_id,
                0,
                "decision",
                {"decision": "d", "details": {"token": "SECRET5"}},
                source="orchestration",
            ),  # fmt: skip
            event(
                trial_id,
                1,
                "lm_call",
                {
                    "model": "openai/gpt-4o-mini",
                    "messages": [
                        {"role": "user", "content": "see https://bob:SECRET2@x.example/a"}
                    ],
                    "response": ["ok"],
                    "settings": {"api_key": "sk-SECRET1", "temperature": 0.0},
                    "latency_ms": 3.0,
                },
            ),  # fmt: skip
        ]

    from dspex import LMSettings, Variables

    return one_trial(
        events_for,
        variables=Variables(lm=LMSettings(model="m", settings={"api_key": "sk-SECRET3"})),
        metadata={"wandb_api_key": "SECRET4"},
    )


def test_secrets_never_leave():
    trial, experiment = secret_trial()
    spans = trial_spans(trial, experiment)
    text = json.dumps(
        [[s.name, s.attributes, [[e.name, e.attributes] for e in s.events]] for s in spans]
    )
    assert not [secret for secret in SECRETS if secret in text]
    llm = spans[1].attributes
    assert json.loads(llm["llm.invocation_parameters"])["api_key"] == "********"
    assert llm["llm.input_messages.0.message.content"] == "see https://bob:***@x.example/a"
    assert llm["gen_ai.request.temperature"] == 0.0 and llm["llm.provider"] == "openai"


def test_the_experiment_header_is_enough(recorded):
    """The journal hands the live exporter the running experiment's header, no trials."""
    experiment = recorded.experiment
    trial = experiment.trials[-1]
    header = experiment.replace(trials=(), best_trial_id=None)
    from_header = trial_spans(trial, header)
    assert [(s.span_id, s.attributes) for s in from_header] == [
        (s.span_id, s.attributes) for s in trial_spans(trial, experiment)
    ]


def test_each_example_span_is_the_parent_of_the_run_it_scored(recorded):
    """Read from the records alone: the run under an example's span is a program call
    with the example's inputs, on a worker that ran it, and every run is under one example."""
    paired = 0
    for trial in recorded.experiment.trials:
        spans = trial_spans(trial, recorded.experiment)
        ids = by_event(spans)
        by_span = {s.span_id: s for s in spans}
        examples = {e.id: e for e in events_of(trial, "example_result")}
        starts = events_of(trial, "module_start")
        for start in starts:
            parent = by_span.get(ids[start.id].parent_span_id)
            if parent is None or parent.attributes.get("dspex.event_id") not in examples:
                continue
            example = examples[parent.attributes["dspex.event_id"]]
            assert start.payload["inputs"] == example.payload["inputs"], trial.name
            assert ids[example.id].start_ns <= ids[start.id].start_ns
            paired += 1
        runs_of = {}
        for start in starts:
            parent = by_span[ids[start.id].parent_span_id]
            runs_of.setdefault(parent.attributes.get("dspex.event_id"), []).append(start)
        for example in examples:
            assert len(runs_of.get(example, [])) <= 1
        top = [s for s in starts if s.parent_id is None]
        if examples and top and trial.metadata.get("role") in (None, "evaluation"):
            assert all(ids[s.id].parent_span_id != spans[0].span_id for s in top), trial.name
    assert paired > 20


def test_a_module_span_carries_the_adapter_calls_summed_on_its_end(recorded):
    """Event format 3: successful adapter calls are no spans of their own; the module
    call that made them says which adapter, how many and how long, as recorded."""
    checked = 0
    for trial in recorded.experiment.trials:
        ids = by_event(trial_spans(trial, recorded.experiment))
        for end in events_of(trial, "module_end"):
            times = end.payload.get("adapter")
            if times is None:
                continue
            span = ids[end.payload["start_id"]]
            assert span.attributes["dspex.adapter.adapter"] == times["adapter"]
            assert span.attributes["dspex.adapter.formats"] == times["formats"] >= 1
            assert span.attributes["dspex.adapter.parse_ms"] == times["parse_ms"] > 0
            checked += 1
    assert checked > 20
    assert not any(events_of(t, "adapter_format") for t in recorded.experiment.trials)
