"""How a recorded trial becomes an OpenTelemetry trace (the table in ``docs/interop.md``).

**One trace per trial.** A trial is what dspex finishes, stores and can send on its own
(while the experiment still runs), so each trial is a complete trace: a root span for the
trial, and under it, nested as recorded, one span per

* module call (``module_start`` with its ``module_end``; kind CHAIN; from event format 3
  with the adapter calls that worked inside it as ``dspex.adapter.*`` attributes),
* LM call (``lm_call``; kind LLM, OpenTelemetry span kind CLIENT),
* adapter format or parse that is an event (``adapter_format``, ``adapter_parse``: every
  one in format 2, a failed one or one outside any module call since; kind CHAIN),
* tool call (``tool_call``; kind TOOL),
* retrieval (``retrieval``; kind RETRIEVER, with ``retrieval.documents``) and embedding
  call (``embedding``; kind EMBEDDING): see :mod:`dspex.export.retrieval`,
* evaluated example (``example_result``; kind EVALUATOR).

The experiment ties its traces together: ``session.id`` is the experiment id (a Phoenix
or Langfuse session), and a trial's parent candidates are span links to their traces.
Which events are spans, their times and which span encloses which are the trial's span
tree (:mod:`dspex.model.spans`), the tree the waterfall draws. Everything else in the
timeline (steps, decisions, created and scored candidates, scores, logs) becomes a span
event on the span that encloses it, which for the optimizer's orchestration is the
trial's root span: the decision that created a candidate sits on that candidate's span.
Errors are ``exception`` events and an ERROR status. Payloads pass through
:func:`dspex.redact.redact` first::

    experiment = store.get_experiment(experiment_id)
    for trial, spans in experiment_spans(experiment):
        root = spans[0]          # the trial: root.attributes["dspex.score"], its decisions
        ...                      # in root.events; spans[1:] nested by parent_span_id
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from operator import attrgetter
from typing import Any, TypeVar, cast

from dspex.export.attributes import (
    CHAIN,
    EVALUATOR,
    SPAN_KIND,
    dspex_attributes,
    exception_attributes,
    io_attributes,
    json_text,
    llm_attributes,
    tool_attributes,
)
from dspex.export.retrieval import embedding_span, retrieval_span
from dspex.export.spans import (
    Attributes,
    SpanEventRecord,
    SpanLinkRecord,
    SpanRecord,
    span_id_of,
    time_ns,
    trace_id_of,
)
from dspex.model import EventKind, Experiment, TraceEvent, Trial
from dspex.model.payloads import (
    AdapterPayload,
    DecisionPayload,
    ExampleResultPayload,
    LmCallPayload,
    ToolCallPayload,
    common_of,
    payload_of,
    typed_payload,
)
from dspex.model.spans import SPAN_KINDS, SpanNode, call_latency_ms, span_tree
from dspex.redact import redact

__all__ = ["SPAN_OPENING_KINDS", "experiment_spans", "trial_spans"]

SPAN_OPENING_KINDS = SPAN_KINDS
"""Event kinds that become a span of their own (and a ``module_end`` with no start): the
span tree's, :data:`dspex.model.spans.SPAN_KINDS` (kept under this name)."""


def experiment_spans(experiment: Experiment) -> Iterator[tuple[Trial, list[SpanRecord]]]:
    """Each trial of ``experiment`` (finished ones: a running experiment has no others)
    with the spans of its trace."""
    for trial in experiment.trials:
        yield trial, trial_spans(trial, experiment)


def trial_spans(trial: Trial, experiment: Experiment) -> list[SpanRecord]:
    """The spans of ``trial``'s trace, its root span first.

    ``experiment`` may be the experiment's header (no trials): only its id, name,
    program, optimizer and tags are read.
    """
    return _TrialTrace(trial, experiment).build()


class _TrialTrace:
    def __init__(self, trial: Trial, experiment: Experiment) -> None:
        self.trial = trial
        self.experiment = experiment
        self.trace_id = trace_id_of(trial.id)
        self.events = sorted(trial.events, key=attrgetter("sequence"))
        self.tree = span_tree(self.events)
        self.examples_with_runs = set(self.tree.scored_runs.values())
        self.common: Attributes = {"dspex.experiment_id": experiment.id, "dspex.trial_id": trial.id}
        self.root = self._root()
        self.spans: dict[str, SpanRecord] = {}  # by the id of the event that opened it

    def build(self) -> list[SpanRecord]:
        for node in self.tree:
            self.spans[node.id] = self._span_of(node)
        for node in self.tree:
            self.spans[node.id].parent_span_id = self._enclosing(node.parent).span_id
        for event in self.events:
            if self.tree.node(event.id) is None and event.kind is not EventKind.MODULE_END:
                self._attach(event)
        self._cover_children()
        return [self.root, *self.spans.values()]

    # -- the trial ------------------------------------------------------------------------

    def _root(self) -> SpanRecord:
        trial, experiment = self.trial, self.experiment
        attributes: Attributes = {
            SPAN_KIND: CHAIN,
            "session.id": experiment.id,
            **self.common,
            "dspex.experiment_name": experiment.name,
            "dspex.program": experiment.program.name,
            "dspex.trial_index": trial.index,
            "dspex.trial_name": trial.name,
            "dspex.trial_status": trial.status.value,
            **_score_attributes(trial),
            **io_attributes("input", redact(trial.variables.to_dict())),
            **io_attributes("output", _outcome(trial)),
        }
        if experiment.optimizer is not None:
            attributes["dspex.optimizer"] = experiment.optimizer.name
        if trial.parent_trial_ids:
            attributes["dspex.parent_trial_ids"] = list(trial.parent_trial_ids)
        if isinstance(trial.metadata.get("role"), str):
            attributes["dspex.role"] = str(trial.metadata["role"])
        if trial.metadata:
            attributes["metadata"] = json_text(redact(trial.metadata))
        if experiment.tags:
            attributes["tag.tags"] = list(experiment.tags)
        last = self.events[-1].timestamp if self.events else trial.started_at
        root = SpanRecord(
            trace_id=self.trace_id,
            span_id=span_id_of(trial.id),
            parent_span_id=None,
            name=trial.name or f"trial {trial.index}",
            start_ns=time_ns(trial.started_at),
            end_ns=time_ns(trial.finished_at or last),
            attributes=attributes,
            links=[
                SpanLinkRecord(trace_id_of(p), span_id_of(p), {"dspex.trial_id": p})
                for p in trial.parent_trial_ids
            ],
        )
        if trial.error is not None:
            failure = exception_attributes(trial.error.to_dict())
            root.events.append(SpanEventRecord("exception", root.end_ns, failure))
            root.fail(f"{trial.error.type}: {trial.error.message}")
        return root

    def _cover_children(self) -> None:
        """Widen the root span to its children (a parent drawn shorter than a child misleads)."""
        root = self.root
        for span in self.spans.values():
            root.start_ns = min(root.start_ns, span.start_ns)
            root.end_ns = max(root.end_ns, span.end_ns)
        root.events.sort(key=attrgetter("time_ns"))  # the trial's failure came first
        if root.events:
            root.end_ns = max(root.end_ns, root.events[-1].time_ns)

    # -- spans ------------------------------------------------------------------------------

    def _span_of(self, node: SpanNode) -> SpanRecord:
        event, kind = node.event, node.kind
        if kind is EventKind.MODULE_START:
            return self._module(event, node.end)
        if kind is EventKind.MODULE_END:
            return self._module(None, event)
        name, attributes = _CALLS[kind](_redacted(typed_payload(event)))
        start_ns, end_ns = _call_times(event)
        if event.id in self.examples_with_runs:  # it starts with the run it scored
            start_ns = min(start_ns, time_ns(node.start))
        span = self._span(event, name, attributes, start_ns, end_ns)
        if kind is EventKind.LM_CALL or kind is EventKind.EMBEDDING:
            span.kind = "client"
        self._fail_on(span, redact(common_of(event).get("error")), span.end_ns)
        return span

    def _module(self, start: TraceEvent | None, end: TraceEvent | None) -> SpanRecord:
        opening = start or end
        assert opening is not None
        begin = payload_of(start, EventKind.MODULE_START) if start is not None else None
        finish = payload_of(end, EventKind.MODULE_END) if end is not None else None
        begin = _redacted(begin) if begin is not None else None
        finish = _redacted(finish) if finish is not None else None
        described = begin or finish
        info = {
            "module": described["module"] if described else None,
            "module_class": described["class"] if described else None,
            "signature": (begin["signature"] if begin else None) or None,
        }
        attributes: Attributes = {
            SPAN_KIND: CHAIN,
            **dspex_attributes(info),
            **io_attributes("input", begin["inputs"] if begin else None),
            **io_attributes("output", finish["outputs"] if finish else None),
        }
        if end is not None and start is not None:
            attributes["dspex.end_event_id"] = end.id
        if finish is not None and "adapter" in finish and isinstance(finish["adapter"], dict):
            # event format 3: the adapter calls that worked, summed on the module call
            for key, value in dspex_attributes(finish["adapter"]).items():
                attributes[key.replace("dspex.", "dspex.adapter.", 1)] = value
        if start is None:
            times = _call_times(opening)
        else:
            last = end.timestamp if end is not None else self.trial.finished_at
            times = (time_ns(start.timestamp), time_ns(last or start.timestamp))
            if end is None:
                attributes["dspex.unfinished"] = True  # the trial ended inside this call
        name = str((described["module"] if described else None) or "module")
        span = self._span(opening, name, attributes, *times)
        self._fail_on(span, finish["error"] if finish else None, span.end_ns)
        return span

    def _span(
        self, event: TraceEvent, name: str, attributes: Attributes, start_ns: int, end_ns: int
    ) -> SpanRecord:
        return SpanRecord(
            trace_id=self.trace_id,
            span_id=span_id_of(event.id),
            parent_span_id=self.root.span_id,
            name=name,
            start_ns=start_ns,
            end_ns=max(end_ns, start_ns),
            attributes={
                **attributes,
                **self.common,
                "dspex.event_id": event.id,
                "dspex.worker": event.worker,
            },
        )

    @staticmethod
    def _fail_on(span: SpanRecord, error: Any, at_ns: int) -> None:
        if isinstance(error, Mapping) and error:
            span.events.append(SpanEventRecord("exception", at_ns, exception_attributes(error)))
            span.fail(f"{error.get('type', 'error')}: {error.get('message', '')}")

    def _enclosing(self, opening_id: str | None) -> SpanRecord:
        """The span opened by event ``opening_id``; None: the root span."""
        return self.spans[opening_id] if opening_id is not None else self.root

    # -- span events --------------------------------------------------------------------------

    def _attach(self, event: TraceEvent) -> None:
        target = self._enclosing(self.tree.enclosing(event.parent_id))
        at_ns = time_ns(event.timestamp)
        error = payload_of(event, EventKind.ERROR)
        if error is not None:
            error = _redacted(error)
            failure = {**exception_attributes(error), "dspex.event_id": event.id}
            target.events.append(SpanEventRecord("exception", at_ns, failure))
            target.fail(f"{error['type'] or 'error'}: {error['message'] or ''}")
            return
        attributes = {**dspex_attributes(redact(event.payload)), "dspex.event_id": event.id}
        name = f"dspex.{event.kind.value}"
        decision = payload_of(event, EventKind.DECISION)
        if decision is not None:
            name = _decision_name(decision)
            attributes["dspex.kind"] = "decision"
        target.events.append(SpanEventRecord(name, at_ns, attributes))
        created = payload_of(event, EventKind.CANDIDATE_CREATED)
        if (
            created is not None
            and created["candidate"] == self.trial.id
            and isinstance(created["strategy"], str)
        ):
            self.root.attributes["dspex.strategy"] = redact(created["strategy"])


def _decision_name(decision: DecisionPayload) -> str:
    """``dspex.decision.<strategy>`` (else ``.<optimizer>``), with the outcome when the
    decision is a verdict: ``dspex.decision.reflective_mutation.rejected``; receivers list
    and filter span events by name."""
    by = decision["strategy"] or decision["optimizer"] or "optimizer"
    name = f"dspex.decision.{_token(str(by))}"
    details = decision["details"] if isinstance(decision["details"], dict) else {}
    if isinstance(details.get("accepted"), bool):
        name += ".accepted" if details["accepted"] else ".rejected"
    elif details.get("skipped") is True:
        name += ".no_change"
    return name


def _token(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text.strip()).lower() or "_"


P = TypeVar("P", bound=Mapping[str, Any])


def _redacted(payload: P) -> P:
    """``payload`` with its secrets hidden (the same keys: :func:`dspex.redact.redact`)."""
    return cast(P, redact(payload))


def _call_times(event: TraceEvent) -> tuple[int, int]:
    """(start, end) of a call recorded when it ended, with its ``latency_ms``."""
    end = time_ns(event.timestamp)
    return end - int(call_latency_ms(event) * 1_000_000), end


def _lm_call(payload: LmCallPayload) -> tuple[str, Attributes]:
    attributes = llm_attributes(payload)
    attributes.update(dspex_attributes(payload, skip=_LM_KEYS))
    return f"chat {payload['model'] or 'lm'}", attributes


_LM_KEYS = frozenset(
    {"model", "messages", "response", "settings", "usage", "cost", "latency_ms", "error"}
)


def _adapter(suffix: str) -> Callable[[AdapterPayload], tuple[str, Attributes]]:
    def describe(payload: AdapterPayload) -> tuple[str, Attributes]:
        completion = payload["completion"] if "completion" in payload else None
        attributes: Attributes = {
            SPAN_KIND: CHAIN,
            **dspex_attributes(payload, skip=frozenset({"latency_ms", "error", "completion"})),
            **io_attributes("input", completion),  # kept when parsing failed
        }
        return f"{payload['adapter'] or 'Adapter'}.{suffix}", attributes

    return describe


def _tool_call(payload: ToolCallPayload) -> tuple[str, Attributes]:
    attributes = tool_attributes(payload)
    attributes.update(dspex_attributes({"module": payload["module"]}))
    return f"execute_tool {payload['tool'] or 'tool'}", attributes


def _example(payload: ExampleResultPayload) -> tuple[str, Attributes]:
    value = payload["value"]
    attributes: Attributes = {
        SPAN_KIND: EVALUATOR,
        **io_attributes("input", {"inputs": payload["inputs"], "labels": payload["labels"]}),
        **io_attributes("output", payload["prediction"]),
        **dspex_attributes(
            payload,
            skip=frozenset({"inputs", "labels", "prediction", "value", "latency_ms", "error"}),
        ),
    }
    if isinstance(value, int | float) and not isinstance(value, bool):
        attributes["dspex.score"] = float(value)
    example = "" if payload["example"] is None else payload["example"]
    return f"example {example}".rstrip(), attributes


# Each kind's describer takes that kind's payload type (a test checks the annotations).
_CALLS: dict[EventKind, Callable[[Any], tuple[str, Attributes]]] = {
    EventKind.LM_CALL: _lm_call,
    EventKind.ADAPTER_FORMAT: _adapter("format"),
    EventKind.ADAPTER_PARSE: _adapter("parse"),
    EventKind.TOOL_CALL: _tool_call,
    EventKind.RETRIEVAL: retrieval_span,
    EventKind.EMBEDDING: embedding_span,
    EventKind.EXAMPLE_RESULT: _example,
}


def _score_attributes(trial: Trial) -> Attributes:
    attributes: Attributes = {}
    if trial.score is not None:
        attributes["dspex.score"] = trial.score
    scope = trial.score_scope
    if scope is not None:
        attributes.update(
            {
                "dspex.score_scope": scope.name,
                "dspex.score_n": scope.n,
                "dspex.score_fingerprint": scope.fingerprint,
            }
        )
        if scope.metric:
            attributes["dspex.score_metric"] = scope.metric
    return attributes


def _outcome(trial: Trial) -> dict[str, Any]:
    outcome: dict[str, Any] = {"status": trial.status.value, "score": trial.score}
    if trial.example_results:
        outcome["examples"] = len(trial.example_results)
        outcome["failed_examples"] = sum(1 for r in trial.example_results if r.error)
    if trial.error is not None:
        outcome["error"] = f"{trial.error.type}: {trial.error.message}"
    return outcome
