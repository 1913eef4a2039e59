"""Span attributes of dspex payloads: OpenInference, OpenTelemetry GenAI, and ``dspex.*``.

The OpenInference semantic conventions are what Phoenix, Langfuse and MLflow read
(``openinference.span.kind``, ``llm.input_messages.<i>.message.role``, ``input.value``...);
the OpenTelemetry GenAI attributes (``gen_ai.request.model``, ``gen_ai.usage.*``) are added
where one exists, for receivers that read those instead. Everything else dspex knows is
under ``dspex.``::

    >>> attrs = llm_attributes({"model": "openai/gpt-4o-mini", "module": "qa.predict",
    ...     "messages": [{"role": "user", "content": "2+2?"}], "response": ["4"],
    ...     "settings": {"temperature": 0.0}, "usage": {"prompt_tokens": 5,
    ...     "completion_tokens": 1, "total_tokens": 6}, "cost": None, "cache_hit": False,
    ...     "latency_ms": 12.5, "error": None})
    >>> attrs["llm.input_messages.0.message.content"]
    '2+2?'
    >>> attrs["llm.output_messages.0.message.content"]
    '4'
    >>> attrs["llm.token_count.total"], attrs["gen_ai.usage.input_tokens"], attrs["llm.provider"]
    (6, 5, 'openai')

Names never nest inside each other (no ``a.b`` next to ``a.b.c``): Phoenix stores
attributes as a tree, where such a pair would collide.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dspex.export.spans import Attributes, AttributeValue
from dspex.model.payloads import ErrorPayload, LmCallPayload, ToolCallPayload

__all__ = [
    "CHAIN",
    "EVALUATOR",
    "LLM",
    "SPAN_KIND",
    "TOOL",
    "attribute_value",
    "dspex_attributes",
    "exception_attributes",
    "io_attributes",
    "json_text",
    "llm_attributes",
    "tool_attributes",
]

SPAN_KIND = "openinference.span.kind"
CHAIN, LLM, TOOL, EVALUATOR = "CHAIN", "LLM", "TOOL", "EVALUATOR"

_JSON_MIME = "application/json"
_TEXT_MIME = "text/plain"

# settings of an LM call that have an OpenTelemetry GenAI attribute
_GENAI_SETTINGS = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}
# usage keys (LiteLLM's names) -> OpenInference, GenAI
_USAGE = {
    "prompt_tokens": ("llm.token_count.prompt", "gen_ai.usage.input_tokens"),
    "completion_tokens": ("llm.token_count.completion", "gen_ai.usage.output_tokens"),
    "total_tokens": ("llm.token_count.total", None),
}


def json_text(value: Any) -> str:
    """Compact JSON of a recorded value (records hold JSON data already)."""
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def attribute_value(value: Any) -> AttributeValue | None:
    """``value`` as an attribute: a scalar or a list of one scalar type as is, anything else
    as JSON text; None (and an empty list) for nothing to say."""
    if value is None:
        return None
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        if not value:
            return None
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds <= {str, bool, int, float}:
            return list(value)
    return json_text(value)


def dspex_attributes(
    payload: Mapping[str, Any], *, skip: frozenset[str] = frozenset()
) -> Attributes:
    """Each top-level payload key as ``dspex.<key>`` (see :func:`attribute_value`)."""
    attributes: Attributes = {}
    for key, value in payload.items():
        if key in skip:
            continue
        plain = attribute_value(value)
        if plain is not None:
            attributes[f"dspex.{key}"] = plain
    return attributes


def io_attributes(direction: str, value: Any) -> Attributes:
    """``input.value``/``output.value`` with their mime type: text as is, data as JSON."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {f"{direction}.value": value, f"{direction}.mime_type": _TEXT_MIME}
    return {f"{direction}.value": json_text(value), f"{direction}.mime_type": _JSON_MIME}


def exception_attributes(error: ErrorPayload | Mapping[str, Any]) -> Attributes:
    """The OpenTelemetry ``exception`` event's attributes of a recorded error."""
    return {
        "exception.type": str(error.get("type") or "error"),
        "exception.message": str(error.get("message") or ""),
        "exception.stacktrace": str(error.get("traceback") or ""),
    }


def llm_attributes(payload: LmCallPayload) -> Attributes:
    """OpenInference and GenAI attributes of an ``lm_call`` payload."""
    model = str(payload["model"] or "")
    attributes: Attributes = {
        SPAN_KIND: LLM,
        "llm.model_name": model,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
    }
    if "/" in model:  # LiteLLM's "provider/model"
        provider = model.split("/", 1)[0]
        attributes.update({"llm.provider": provider, "gen_ai.provider.name": provider})
    messages = payload["messages"]
    for index, message in enumerate(messages if isinstance(messages, list) else []):
        attributes.update(_message("llm.input_messages", index, message))
    responses = _responses(payload["response"])
    for index, response in enumerate(responses):
        attributes.update(_message("llm.output_messages", index, response))
    attributes.update(_settings(payload["settings"]))
    attributes.update(_usage(payload["usage"], payload["cost"]))
    attributes.update(io_attributes("input", messages))
    if responses:
        first = responses[0].get("content")
        attributes.update(io_attributes("output", first if first is not None else responses[0]))
    return attributes


def tool_attributes(payload: ToolCallPayload) -> Attributes:
    """OpenInference and GenAI attributes of a ``tool_call`` payload."""
    name = str(payload["tool"] or "tool")
    return {
        SPAN_KIND: TOOL,
        "tool.name": name,
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        **io_attributes("input", payload["args"]),
        **io_attributes("output", payload["result"]),
    }


def _settings(settings: Any) -> Attributes:
    if not isinstance(settings, Mapping):
        return {}
    attributes: Attributes = {"llm.invocation_parameters": json_text(settings)}
    for key, name in _GENAI_SETTINGS.items():
        value = settings.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value
    return attributes


def _usage(usage: Any, cost: Any) -> Attributes:
    attributes: Attributes = {}
    if isinstance(usage, Mapping):
        for key, names in _USAGE.items():
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                attributes.update({name: value for name in names if name})
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        attributes["llm.cost.total"] = float(cost)
    return attributes


def _responses(response: Any) -> list[dict[str, Any]]:
    """DSPy's LM outputs (texts, or dicts with ``text`` and ``tool_calls``) as messages."""
    if response is None:
        return []
    items = response if isinstance(response, list) else [response]
    messages = []
    for item in items:
        if isinstance(item, Mapping):
            text = item.get("text")
            messages.append(
                {
                    "role": "assistant",
                    "content": text if isinstance(text, str) else None,
                    "tool_calls": item.get("tool_calls"),
                }
            )
        else:
            messages.append(
                {"role": "assistant", "content": item if isinstance(item, str) else json_text(item)}
            )
    return messages


def _message(prefix: str, index: int, message: Any) -> Attributes:
    base = f"{prefix}.{index}.message."
    if not isinstance(message, Mapping):
        return {base + "role": "user", base + "content": _text(message)}
    attributes: Attributes = {base + "role": str(message.get("role") or "user")}
    content = message.get("content")
    if isinstance(content, list):
        for part_index, part in enumerate(content):
            attributes.update(_content_part(f"{base}contents.{part_index}.message_content.", part))
    elif content is not None:
        attributes[base + "content"] = _text(content)
    if message.get("name"):
        attributes[base + "name"] = str(message["name"])
    if message.get("tool_call_id"):
        attributes[base + "tool_call_id"] = str(message["tool_call_id"])
    calls = message.get("tool_calls")
    for call_index, call in enumerate(calls if isinstance(calls, list) else []):
        attributes.update(_tool_call(f"{base}tool_calls.{call_index}.tool_call.", call))
    return attributes


def _content_part(prefix: str, part: Any) -> Attributes:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text":
        return {prefix + "type": "text", prefix + "text": _text(part.get("text"))}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return {prefix + "type": "image", prefix + "image.image.url": _text(url)}
    return {prefix + "type": "text", prefix + "text": _text(part)}


def _tool_call(prefix: str, call: Any) -> Attributes:
    if not isinstance(call, Mapping):
        return {prefix + "function.arguments": _text(call)}
    function = call.get("function")
    if not isinstance(function, Mapping):
        function = {}
    attributes: Attributes = {
        prefix + "function.name": str(function.get("name") or ""),
        prefix + "function.arguments": _text(function.get("arguments")),
    }
    if call.get("id"):
        attributes[prefix + "id"] = str(call["id"])
    return attributes


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json_text(value)
