"""Read back what DSPy's ChatAdapter and JSONAdapter put into a request.

The offline LM answers the way a real model would: from the prompt alone. This module
turns the system and chat messages into a :class:`Prompt` (instructions, field names
and types, the current inputs, the demos) and renders output fields in the format
the adapter asked for.

>>> system = (
...     "Your input fields are:\\n1. `question` (str):\\nYour output fields are:\\n"
...     "1. `answer` (str):\\nAll interactions will be structured in the following way\\n"
...     "In adhering to this structure, your objective is: \\n        Answer briefly."
... )
>>> user = "[[ ## question ## ]]\\nWhat is 2 + 2?\\n\\nRespond with the corresponding output fields"
>>> p = parse(system, [("user", user)])
>>> p.instructions, p.inputs, p.outputs, p.json_mode
('Answer briefly.', {'question': 'What is 2 + 2?'}, {'answer': 'str'}, False)
>>> render({"answer": "4"}, p)
'[[ ## answer ## ]]\\n4\\n\\n[[ ## completed ## ]]'
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Prompt", "parse", "render"]

_MARKER = re.compile(r"\[\[ ## (\w+) ## \]\]")
_FIELD_LINE = re.compile(r"^\d+\. `(\w+)` \((.*?)\):", re.M)
_OBJECTIVE = "In adhering to this structure, your objective is:"
_TAILS = (
    "\n\nRespond with the corresponding output fields",
    "\n\nRespond with a JSON object",
)
_DEMO_PREAMBLE = (
    "This is an example of the task, though some input or output fields are not supplied."
)


@dataclass(frozen=True)
class Prompt:
    """One request as the adapter wrote it."""

    instructions: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # name -> type as the adapter wrote it
    demos: tuple[dict[str, str], ...] = ()  # inputs and outputs of each demo, merged
    json_mode: bool = False


def _section(system: str, start: str, end: str) -> str:
    begin = system.find(start)
    if begin < 0:
        return ""
    stop = system.find(end, begin + len(start))
    return system[begin + len(start) : stop if stop >= 0 else None]


def _fields(text: str) -> dict[str, str]:
    return {name: kind.strip() for name, kind in _FIELD_LINE.findall(text)}


def _strip_tail(text: str) -> str:
    for tail in _TAILS:
        cut = text.find(tail)
        if cut >= 0:
            text = text[:cut]
    return text


def _marked_fields(text: str) -> dict[str, str]:
    parts = _MARKER.split(_strip_tail(text))
    values = {}
    for name, value in zip(parts[1::2], parts[2::2], strict=True):
        if name != "completed":
            values[name] = value.strip()
    return values


def _assistant_fields(text: str) -> dict[str, str]:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return _marked_fields(text)


def parse(system: str, messages: Sequence[tuple[str, str]]) -> Prompt:
    """Parse the system text and ``(role, text)`` messages of one request."""
    instructions = (
        textwrap.dedent(system.split(_OBJECTIVE, 1)[1]).strip() if _OBJECTIVE in system else ""
    )
    outputs = _fields(_section(system, "Your output fields are:", "All interactions"))
    users = [i for i, (role, _) in enumerate(messages) if role == "user"]
    inputs = _marked_fields(messages[users[-1]][1]) if users else {}
    demos = []
    for index, (role, text) in enumerate(messages):
        following = messages[index + 1] if index + 1 < len(messages) else None
        if role == "user" and following is not None and following[0] == "assistant":
            demo = _marked_fields(text.replace(_DEMO_PREAMBLE, ""))
            demo.update(_assistant_fields(following[1]))
            demos.append(demo)
    json_mode = "Outputs will be a JSON object" in system or "Respond with a JSON object" in (
        messages[-1][1] if messages else ""
    )
    return Prompt(instructions, inputs, outputs, tuple(demos), json_mode)


def _text(value: Any, kind: str) -> str:
    if isinstance(value, str):
        return value
    if kind.startswith(("dict", "list", "tuple")) or isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render(values: Mapping[str, Any], prompt: Prompt) -> str:
    """Write ``values`` (in the prompt's output field order) as the adapter expects them."""
    order = list(prompt.outputs) or list(values)
    if prompt.json_mode:
        return json.dumps({name: values.get(name, "") for name in order}, ensure_ascii=False)
    blocks = [
        f"[[ ## {name} ## ]]\n{_text(values.get(name, ''), prompt.outputs.get(name, 'str'))}"
        for name in order
    ]
    return "\n\n".join([*blocks, "[[ ## completed ## ]]"])
