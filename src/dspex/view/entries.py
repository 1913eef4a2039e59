"""How each kind of trace event reads: its title, short fields and long texts.

One function per event kind, chosen by :func:`describe`; block headers (timestamp,
worker, program, variables in effect) come from :func:`block_header`. Payload keys
follow ``docs/data-model.md``; a key that is missing is left out, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dspex.model import TraceEvent, Trial
from dspex.redact import redact
from dspex.view.timeline import Description, Entry, format_score, short_json

__all__ = ["block_header", "describe", "describe_change", "format_ms", "format_time"]

Fields = list[tuple[str, str]]


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


def _optimizer_start(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Optimizer", p.get("optimizer"))
    _put(fields, "Settings", redact(p.get("settings")))
    return f"Optimizer start: {p.get('optimizer', '?')}", fields, []


def _optimizer_end(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Best candidate", p.get("best_candidate"))
    if "best_score" in p:
        fields.append(("Best score", format_score(_num(p.get("best_score")))))
    return f"Optimizer end: {p.get('optimizer', '?')}", fields, []


def _step(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Batch", p.get("batch"))
    _put(fields, "Details", p.get("details"))
    return f"Step {p.get('step', '?')}", fields, []


def _decision(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Decision", p.get("decision"), None)
    _put(fields, "Strategy", p.get("strategy"))
    _put(fields, "Rationale", p.get("rationale"), None)
    _put(fields, "Action", p.get("action"), 400)
    texts = []
    action = p.get("action")
    if isinstance(action, str) and len(action) > 400:
        texts.append(("action", action))
    if p.get("details"):
        texts.append(("details", _pretty(p.get("details"))))
    return "Decision", fields, texts


def _candidate_created(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    name = p.get("name") or p.get("candidate") or "?"
    fields: Fields = [("Action", f"Created program configuration {name}")]
    _put(fields, "Candidate", p.get("candidate"))
    _put(fields, "Parents", ", ".join(str(x) for x in _list(p.get("parents"))))
    _put(fields, "Strategy", p.get("strategy"))
    texts = []
    for change in _list(p.get("changes")):
        fields.append(("Change", describe_change(change)))
        if isinstance(change, dict):
            label = f"{change.get('predictor', '?')}.{change.get('field', '?')} after"
            texts.append((label, _pretty(change.get("after"))))
    return f"Candidate created: {name}", fields, texts


def _candidate_scored(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Candidate", p.get("candidate"))
    fields.append(("Score", format_score(_num(p.get("score")))))
    _put(fields, "Scope", p.get("scope"))
    _put(fields, "N", p.get("n"))
    return "Candidate scored", fields, []


# -- execution ---------------------------------------------------------------------


def _module_start(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Class", p.get("class"))
    _put(fields, "Signature", p.get("signature"))
    _put(fields, "Inputs", p.get("inputs"))
    return f"{p.get('module', '?')} ({p.get('class', '?')})", fields, []


def _module_end(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Outputs", p.get("outputs"))
    _put(fields, "Latency", format_ms(p.get("latency_ms")))
    return f"{p.get('module', '?')} finished", fields, _error_texts(p.get("error"))


def _lm_call(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Model", p.get("model"))
    _put(fields, "Module", p.get("module"))
    usage = p.get("usage") if isinstance(p.get("usage"), dict) else {}
    if usage:
        fields.append(
            (
                "Tokens",
                f"{usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} "
                f"completion = {usage.get('total_tokens', 0)}",
            )
        )
    _put(fields, "Latency", format_ms(p.get("latency_ms")))
    if p.get("cache_hit"):
        fields.append(("Cache", "hit"))
    _put(fields, "Settings", redact(p.get("settings")))
    texts: list[tuple[str, str]] = []
    for message in _list(p.get("messages")):
        if isinstance(message, dict):
            texts.append((f"prompt · {message.get('role', '?')}", _content(message.get("content"))))
    responses = p.get("response") or []
    if not isinstance(responses, list):
        responses = [responses]
    for number, response in enumerate(responses):
        label = "response" if len(responses) == 1 else f"response {number}"
        texts.append((label, _content(response)))
    texts += _error_texts(p.get("error"))
    where = f" · {p['module']}" if p.get("module") else ""
    return f"LM call{where}", fields, texts


def _adapter(p: dict[str, Any], kind: str) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = [("OK", "yes" if p.get("ok", True) else "no")]
    _put(fields, "Module", p.get("module"))
    texts = []
    if p.get("completion"):
        texts.append(("completion", _content(p.get("completion"))))
    texts += _error_texts(p.get("error"))
    verb = "format" if kind == "adapter_format" else "parse"
    return f"Adapter {verb} ({p.get('adapter', '?')})", fields, texts


def _tool_call(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Args", p.get("args"))
    _put(fields, "Result", p.get("result"))
    return f"Tool call {p.get('tool', '?')}", fields, _error_texts(p.get("error"))


def _log(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Message", p.get("message"), None)
    return f"Log {p.get('level', '')} {p.get('logger', '')}".rstrip(), fields, []


# -- evaluation --------------------------------------------------------------------


def _example_result(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Metric", p.get("metric"))
    value = _num(p.get("value"))
    passed = p.get("passed")
    verdict = " (Correct)" if passed is True else " (Wrong)" if passed is False else ""
    fields.append(("Result", f"{format_score(value)}{verdict}"))
    _put(fields, "Inputs", p.get("inputs"))
    _put(fields, "Labels", p.get("labels"))
    _put(fields, "Prediction", p.get("prediction"))
    _put(fields, "Latency", format_ms(p.get("latency_ms")))
    return f"Example {p.get('example', '?')}", fields, _error_texts(p.get("error"))


def _trial_score(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Metric", p.get("metric"))
    fields.append(("Final Score", format_score(_num(p.get("score")))))
    _put(fields, "N", p.get("n"))
    if "failures" in p:
        fields.append(("Failures", str(p.get("failures"))))
    _put(fields, "Scope", p.get("scope"))
    return "Final Score", fields, []


def _error(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    fields: Fields = []
    _put(fields, "Message", p.get("message"), None)
    return (
        f"Error {p.get('type', '')}".rstrip(),
        fields,
        [("traceback", str(p.get("traceback", "")))],
    )


def _generic(p: dict[str, Any]) -> tuple[str, Fields, list[tuple[str, str]]]:
    return "", [(str(k), short_json(v, 300)) for k, v in p.items()], []


_DESCRIBERS: dict[str, Callable[[dict[str, Any]], tuple[str, Fields, list[tuple[str, str]]]]] = {
    "optimizer_start": _optimizer_start,
    "optimizer_end": _optimizer_end,
    "step": _step,
    "decision": _decision,
    "candidate_created": _candidate_created,
    "candidate_scored": _candidate_scored,
    "module_start": _module_start,
    "module_end": _module_end,
    "lm_call": _lm_call,
    "adapter_format": lambda p: _adapter(p, "adapter_format"),
    "adapter_parse": lambda p: _adapter(p, "adapter_parse"),
    "tool_call": _tool_call,
    "log": _log,
    "example_result": _example_result,
    "trial_score": _trial_score,
    "error": _error,
}


def describe(event: TraceEvent) -> Description:
    """How ``event`` reads: its title, short fields, long texts and whether it failed."""
    kind = event.kind.value
    title, fields, texts = _DESCRIBERS.get(kind, _generic)(dict(event.payload))
    return Description(
        title=title or kind.replace("_", " ").capitalize(),
        fields=tuple(fields),
        texts=tuple((label, text) for label, text in texts if text),
        failed=_failed(kind, event.payload),
    )


def _failed(kind: str, payload: dict[str, Any]) -> bool:
    if kind == "error":
        return True
    if payload.get("error"):
        return True
    return (kind == "example_result" and payload.get("passed") is False) or (
        kind == "adapter_parse" and payload.get("ok") is False
    )


def block_header(source: str, entries: list[Entry], trial: Trial) -> Fields:
    """The few lines above a block: when, where, which program and variables."""
    fields: Fields = [("Timestamp", format_time(entries[0].event))]
    if source == "orchestration":
        optimizers = {e.event.payload.get("optimizer") for e in entries} - {None}
        if optimizers:
            fields.append(("Optimizer", ", ".join(sorted(str(o) for o in optimizers))))
    elif source == "execution":
        fields.append(("Worker", ", ".join(dict.fromkeys(e.event.worker for e in entries))))
        fields += _program_fields(entries, trial)
    else:
        metrics = {e.event.payload.get("metric") for e in entries} - {None}
        if metrics:
            fields.append(("Metric", ", ".join(sorted(str(m) for m in metrics))))
    return fields


def _program_fields(entries: list[Entry], trial: Trial) -> Fields:
    starts = [e for e in entries if e.kind == "module_start"]
    fields: Fields = []
    if starts:
        top = min(starts, key=lambda e: e.depth)
        p = top.event.payload
        fields.append(("Program", f"{p.get('module', '?')} (Class: {p.get('class', '?')})"))
    modules = list(dict.fromkeys(e.module for e in entries if e.module))
    for name in modules:
        variables = trial.variables.predictors.get(name)
        if variables is None:
            continue
        if variables.instructions:
            fields.append((f"instructions · {name}", short_json(variables.instructions, 240)))
        demos = f"{len(variables.demos)} demo(s)"
        if variables.demos:
            demos += ": " + short_json(list(variables.demos), 200)
        fields.append((f"demos · {name}", demos))
    fields += _lm_settings(entries, trial)
    return fields


def _lm_settings(entries: Iterable[Entry], trial: Trial) -> Fields:
    # The settings an LM call was actually sent with win over the trial's declared ones.
    settings: dict[str, Any] = {}
    if trial.variables.lm is not None:
        settings.update(trial.variables.lm.settings)
    for entry in entries:
        sent = entry.event.payload.get("settings")
        if entry.is_lm_call and isinstance(sent, dict):
            settings.update(sent)
            break
    return [
        (key, short_json(settings[key]))
        for key in ("temperature",)
        if settings.get(key) is not None
    ]


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
