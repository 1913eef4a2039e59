"""How each kind of trace event reads: its title, short fields and long texts.

One function per event kind, chosen by :func:`describe`, reading that kind's payload
type (:mod:`dspex.model.payloads`); block headers (timestamp, worker, program, variables
in effect) come from :func:`block_header`. A key that is missing is left out, never
guessed; a value of an unexpected shape (a record from elsewhere) shows as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dspex.formatting import format_score
from dspex.model import EventKind, TraceEvent
from dspex.model.payloads import (
    AdapterPayload,
    AdapterTimes,
    CandidateCreatedPayload,
    CandidateScoredPayload,
    DecisionPayload,
    EmbeddingPayload,
    ErrorEventPayload,
    ExampleResultPayload,
    LmCallPayload,
    LogPayload,
    ModuleEndPayload,
    ModuleStartPayload,
    OptimizerEndPayload,
    OptimizerStartPayload,
    RetrievalPayload,
    StepPayload,
    ToolCallPayload,
    TrialScorePayload,
    common_of,
    payload_of,
    typed_payload,
)
from dspex.redact import redact
from dspex.view.retrievals import passage_lines, short_name, view_of

__all__ = [
    "Description",
    "Fields",
    "describe",
    "describe_change",
    "failed",
    "format_ms",
    "format_time",
    "short_json",
    "shown",
]

Fields = list[tuple[str, str]]


@dataclass(frozen=True)
class Description:
    """How an event reads: ``fields`` are short (name, value) pairs; ``texts`` are long
    texts (an LM prompt's messages, its responses, a traceback) that renderers fold."""

    title: str
    fields: tuple[tuple[str, str], ...] = ()
    texts: tuple[tuple[str, str], ...] = ()
    failed: bool = False


def short_json(value: Any, limit: int | None = None) -> str:
    """Compact one-line JSON for a value (strings as they are); cut at ``limit`` chars."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if limit is not None and len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


def format_time(event: TraceEvent) -> str:
    """ISO timestamp with milliseconds, ``2026-01-01T10:30:01.123Z``."""
    return (
        event.timestamp.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{event.timestamp.microsecond // 1000:03d}Z"
    )


def format_ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return ""
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def describe_change(change: dict[str, Any] | Any) -> str:
    """One line for a candidate_created change: what happened to which variable."""
    if not isinstance(change, dict):
        return short_json(change, 200)
    where = f"{change.get('predictor', '?')}.{change.get('field', '?')}"
    before, after = change.get("before"), change.get("after")
    if isinstance(before, str) and isinstance(after, str):
        if after.startswith(before) and len(after) > len(before):
            return f"{where}: appended {short_json(after[len(before) :].strip(), 160)!r}"
        return f"{where}: replaced with {short_json(after, 160)!r}"
    if isinstance(before, list) and isinstance(after, list):
        added = len(after) - len(before)
        verb = f"appended {added} demo(s)" if added > 0 else "changed demos"
        return f"{where}: {verb} ({len(before)} -> {len(after)})"
    return f"{where}: {short_json(before, 60)} -> {short_json(after, 60)}"


def _put(fields: Fields, name: str, value: Any, limit: int | None = 300) -> None:
    if value is None or value == "" or value == {} or value == []:
        return
    fields.append((name, short_json(value, limit)))


def _error_texts(error: Any) -> list[tuple[str, str]]:
    if not isinstance(error, dict) or not error:
        return []
    head = f"{error.get('type', 'error')}: {error.get('message', '')}"
    return [("error", head), ("traceback", str(error.get("traceback", "")))]


# -- orchestration -----------------------------------------------------------------


Described = tuple[str, Fields, list[tuple[str, str]]]


def _optimizer_start(p: OptimizerStartPayload) -> Described:
    fields: Fields = []
    _put(fields, "Optimizer", p["optimizer"])
    _put(fields, "Settings", redact(p["settings"]))
    return f"Optimizer start: {p['optimizer'] or '?'}", fields, []


def _optimizer_end(p: OptimizerEndPayload) -> Described:
    fields: Fields = []
    if "best_candidate" in p:
        _put(fields, "Best candidate", p["best_candidate"])
    if "best_score" in p:
        fields.append(("Best score", format_score(_num(p["best_score"]))))
    return f"Optimizer end: {p['optimizer'] or '?'}", fields, []


def _step(p: StepPayload) -> Described:
    fields: Fields = []
    _put(fields, "Batch", p["batch"])
    _put(fields, "Details", p["details"])
    return f"Step {shown(p['step'])}", fields, []


def _decision(p: DecisionPayload) -> Described:
    fields: Fields = []
    _put(fields, "Decision", p["decision"], None)
    _put(fields, "Strategy", p["strategy"])
    _put(fields, "Rationale", p["rationale"], None)
    _put(fields, "Action", p["action"], 400)
    texts = []
    action = p["action"]
    if isinstance(action, str) and len(action) > 400:
        texts.append(("action", action))
    if p["details"]:
        texts.append(("details", _pretty(p["details"])))
    return "Decision", fields, texts


def _candidate_created(p: CandidateCreatedPayload) -> Described:
    name = p["name"] or p["candidate"] or "?"
    fields: Fields = [("Action", f"Created program configuration {name}")]
    _put(fields, "Candidate", p["candidate"])
    _put(fields, "Parents", ", ".join(str(x) for x in _list(p["parents"])))
    _put(fields, "Strategy", p["strategy"])
    texts = []
    for change in _list(p["changes"]):
        fields.append(("Change", describe_change(change)))
        if isinstance(change, dict):
            label = f"{change.get('predictor', '?')}.{change.get('field', '?')} after"
            texts.append((label, _pretty(change.get("after"))))
    return f"Candidate created: {name}", fields, texts


def _candidate_scored(p: CandidateScoredPayload) -> Described:
    fields: Fields = []
    _put(fields, "Candidate", p["candidate"])
    fields.append(("Score", format_score(_num(p["score"]))))
    _put(fields, "Scope", p["scope"])
    _put(fields, "N", p["n"])
    return "Candidate scored", fields, []


# -- execution ---------------------------------------------------------------------


def _module_start(p: ModuleStartPayload) -> Described:
    fields: Fields = []
    _put(fields, "Class", p["class"])
    _put(fields, "Signature", p["signature"])
    _put(fields, "Inputs", p["inputs"])
    return f"{shown(p['module'])} ({shown(p['class'])})", fields, []


def _module_end(p: ModuleEndPayload) -> Described:
    fields: Fields = []
    _put(fields, "Outputs", p["outputs"])
    _put(fields, "Latency", format_ms(p["latency_ms"]))
    if "adapter" in p and isinstance(p["adapter"], dict):
        _put(fields, "Adapter", adapter_times(p["adapter"]))
    return f"{shown(p['module'])} finished", fields, _error_texts(p["error"])


def adapter_times(times: AdapterTimes) -> str:
    """A module call's adapter calls that worked (event format 3), in one line.

    >>> adapter_times({"adapter": "ChatAdapter", "formats": 1, "format_ms": 0.21,
    ...                "parses": 2, "parse_ms": 0.5})
    'ChatAdapter: format 0.2 ms, 2 parses 0.5 ms'
    """
    parts = []
    for count, noun, ms in (
        (times["formats"], "format", times["format_ms"]),
        (times["parses"], "parse", times["parse_ms"]),
    ):
        if isinstance(count, int) and count > 0:
            said = noun if count == 1 else f"{count} {noun}s"
            parts.append(f"{said} {format_ms(ms)}".rstrip())
    return f"{shown(times['adapter'])}: {', '.join(parts)}" if parts else shown(times["adapter"])


def _lm_call(p: LmCallPayload) -> Described:
    fields: Fields = []
    _put(fields, "Model", p["model"])
    _put(fields, "Module", p["module"])
    usage: Mapping[str, Any] = p["usage"] if isinstance(p["usage"], dict) else {}
    if usage:
        fields.append(
            (
                "Tokens",
                f"{usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} "
                f"completion = {usage.get('total_tokens', 0)}",
            )
        )
    _put(fields, "Latency", format_ms(p["latency_ms"]))
    if p["cache_hit"]:
        fields.append(("Cache", "hit"))
    _put(fields, "Settings", redact(p["settings"]))
    texts: list[tuple[str, str]] = []
    for message in _list(p["messages"]):
        if isinstance(message, dict):
            texts.append((f"prompt · {message.get('role', '?')}", _content(message.get("content"))))
    responses = p["response"] or []
    if not isinstance(responses, list):
        responses = [responses]
    for number, response in enumerate(responses):
        label = "response" if len(responses) == 1 else f"response {number}"
        texts.append((label, _content(response)))
    texts += _error_texts(p["error"])
    where = f" · {p['module']}" if p["module"] else ""
    return f"LM call{where}", fields, texts


def _adapter(verb: str) -> Callable[[AdapterPayload], Described]:
    def describe(p: AdapterPayload) -> Described:
        fields: Fields = [("OK", "no" if p["ok"] is False else "yes")]
        _put(fields, "Module", p["module"])
        texts = []
        if "completion" in p and p["completion"]:
            texts.append(("completion", _content(p["completion"])))
        texts += _error_texts(p["error"])
        return f"Adapter {verb} ({shown(p['adapter'])})", fields, texts

    return describe


def _tool_call(p: ToolCallPayload) -> Described:
    fields: Fields = []
    _put(fields, "Args", p["args"])
    _put(fields, "Result", p["result"])
    return f"Tool call {shown(p['tool'])}", fields, _error_texts(p["error"])


def _retrieval(p: RetrievalPayload) -> Described:
    fields: Fields = []
    _put(fields, "Retriever", p["retriever"])
    _put(fields, "Module", p["module"])
    _put(fields, "k", p["k"])
    _put(fields, "Latency", format_ms(p["latency_ms"]))
    if "batched" in p and p["batched"] and p["batched"] > 1:
        fields.append(("Batched", f"embedded with {p['batched'] - 1} other queries"))
    _put(fields, "Settings", redact(p["settings"]))
    view = view_of(p)
    texts = [("passages", "\n".join(passage_lines(view)))] if view.results else []
    texts += _error_texts(p["error"])
    count = sum(len(r.passages) for r in view.results)
    where = f" · {p['module']}" if p["module"] else ""
    found = f" → {count} passage{'s' if count != 1 else ''}"
    return f"Retrieval {short_name(p['retriever'])}{where}{found}", fields, texts


def _embedding(p: EmbeddingPayload) -> Described:
    fields: Fields = []
    _put(fields, "Model", p["model"])
    _put(fields, "Embedder", p["embedder"])
    _put(fields, "Purpose", p["purpose"])
    _put(fields, "Retriever", p["retriever"])
    _put(fields, "Inputs", p["inputs"])
    if p["batches"] is not None:
        fields.append(("Batches", f"{p['batches']} of up to {p['batch_size']} texts"))
    if p["cache_hits"]:
        fields.append(("Cache", f"{p['cache_hits']} batch(es) from cache"))
    _put(fields, "Dimensions", p["dimensions"])
    usage: Mapping[str, Any] = p["usage"] if isinstance(p["usage"], dict) else {}
    if usage:
        fields.append(("Tokens", str(usage.get("total_tokens", usage.get("prompt_tokens", 0)))))
    if isinstance(p["cost"], int | float):
        fields.append(("Cost", f"${p['cost']:.6f}"))
    _put(fields, "Latency", format_ms(p["latency_ms"]))
    if "callers" in p and p["callers"] and p["callers"] > 1:
        fields.append(("Callers", f"{p['callers']} retrievals' queries in this one call"))
    texts = [("texts", "\n".join(str(t) for t in _list(p["texts"])))] if p["texts"] else []
    texts += _error_texts(p["error"])
    count = p["inputs"] if isinstance(p["inputs"], int) else 0
    what = f"index of {count} texts" if p["purpose"] == "index" else f"{count} text(s)"
    return f"Embedding {short_name(p['model'])} · {what}", fields, texts


def _log(p: LogPayload) -> Described:
    fields: Fields = []
    _put(fields, "Message", p["message"], None)
    logger = p["logger"] if "logger" in p else ""
    return f"Log {p['level'] or ''} {logger}".rstrip(), fields, []


# -- evaluation --------------------------------------------------------------------


def _example_result(p: ExampleResultPayload) -> Described:
    fields: Fields = []
    _put(fields, "Metric", p["metric"])
    value = _num(p["value"])
    passed = p["passed"]
    verdict = " (Correct)" if passed is True else " (Wrong)" if passed is False else ""
    fields.append(("Result", f"{format_score(value)}{verdict}"))
    _put(fields, "Inputs", p["inputs"])
    _put(fields, "Labels", p["labels"])
    _put(fields, "Prediction", p["prediction"])
    _put(fields, "Latency", format_ms(p["latency_ms"]))
    return f"Example {shown(p['example'])}", fields, _error_texts(p["error"])


def _trial_score(p: TrialScorePayload) -> Described:
    fields: Fields = []
    _put(fields, "Metric", p["metric"])
    fields.append(("Final Score", format_score(_num(p["score"]))))
    _put(fields, "N", p["n"])
    if p["failures"] is not None:
        fields.append(("Failures", str(p["failures"])))
    _put(fields, "Scope", p["scope"])
    return "Final Score", fields, []


def _error(p: ErrorEventPayload) -> Described:
    fields: Fields = []
    _put(fields, "Message", p["message"], None)
    return (
        f"Error {p['type'] or ''}".rstrip(),
        fields,
        [("traceback", str(p["traceback"] or ""))],
    )


def _generic(p: Mapping[str, Any]) -> Described:
    return "", [(str(k), short_json(v, 300)) for k, v in p.items()], []


# Each kind's describer takes that kind's payload type (a test checks the annotations).
_DESCRIBERS: dict[EventKind, Callable[[Any], Described]] = {
    EventKind.OPTIMIZER_START: _optimizer_start,
    EventKind.OPTIMIZER_END: _optimizer_end,
    EventKind.STEP: _step,
    EventKind.DECISION: _decision,
    EventKind.CANDIDATE_CREATED: _candidate_created,
    EventKind.CANDIDATE_SCORED: _candidate_scored,
    EventKind.MODULE_START: _module_start,
    EventKind.MODULE_END: _module_end,
    EventKind.LM_CALL: _lm_call,
    EventKind.ADAPTER_FORMAT: _adapter("format"),
    EventKind.ADAPTER_PARSE: _adapter("parse"),
    EventKind.TOOL_CALL: _tool_call,
    EventKind.RETRIEVAL: _retrieval,
    EventKind.EMBEDDING: _embedding,
    EventKind.LOG: _log,
    EventKind.EXAMPLE_RESULT: _example_result,
    EventKind.TRIAL_SCORE: _trial_score,
    EventKind.ERROR: _error,
}


def describe(event: TraceEvent) -> Description:
    """How ``event`` reads: its title, short fields, long texts and whether it failed."""
    kind = event.kind
    describer = _DESCRIBERS.get(kind)
    if describer is None:
        title, fields, texts = _generic(event.payload)
    else:
        title, fields, texts = describer(typed_payload(event))
    return Description(
        title=title or kind.value.replace("_", " ").capitalize(),
        fields=tuple(fields),
        texts=tuple((label, _visible(text)) for label, text in texts if text),
        failed=failed(event),
    )


def _visible(text: str) -> str:
    """A text that is only whitespace (a blank completion, a prefix set to a space) said
    as such, not shown as a label over nothing."""
    return text if text.strip() else f"(only whitespace: {text!r})"


def failed(event: TraceEvent) -> bool:
    """Whether ``event`` records a failure: an error, a call that raised, a wrong answer,
    a completion the adapter could not parse."""
    kind = event.kind
    if kind is EventKind.ERROR:
        return True
    if common_of(event).get("error"):
        return True
    result = payload_of(event, EventKind.EXAMPLE_RESULT)
    if result is not None:
        return result["passed"] is False
    parsed = payload_of(event, EventKind.ADAPTER_PARSE)
    return parsed is not None and parsed["ok"] is False


def shown(value: object) -> str:
    """A payload value in a title: ``?`` when the record does not say."""
    return "?" if value is None else str(value)


def _list(value: Any) -> list[Any]:
    """``value`` if it is a list; a payload of another shape shows nothing rather than fail."""
    return value if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    # A metric may return a bool; True reads as 1.
    return float(value) if isinstance(value, int | float) else None


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _pretty(value)


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
