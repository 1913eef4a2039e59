"""What the offline LM can answer, chosen by the output fields a signature asks for.

=========================== ==================================================
output fields               skill
=========================== ==================================================
``answer`` (+ reasoning)    the task solver (:mod:`dspex.offline.tasks`); with a
                            ``context`` input, the passages' reader
                            (:mod:`dspex.offline.harbor`)
``search_query``            the RAG demo's query writer (same module)
``module_advice``           SIMBA's OfferFeedback: blame and one rule per module
``new_instruction``         GEPA's reflection (:mod:`dspex.offline.instructions`)
``proposed_prefix_...``     COPRO's instruction generator (same module)
``proposed_instruction``    MIPROv2's instruction proposer
``program_description``     MIPROv2's DescribeProgram
``module_description``      MIPROv2's DescribeModule
``observations``            MIPROv2's dataset descriptor
``summary``                 MIPROv2's observation summarizer
anything else               a short, honest placeholder per field
=========================== ==================================================

Every skill takes the parsed :class:`~dspex.offline.prompt.Prompt` and a
:class:`Draws` (the call's reproducible randomness) and returns field values.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

from dspex.offline.draws import Draws
from dspex.offline.harbor import answer_from_context, search_query_for
from dspex.offline.instructions import copro_proposal, reflect
from dspex.offline.prompt import Prompt
from dspex.offline.tasks import RULES, Guidance, Noise, classify, diagnose, solve

__all__ = ["Draws", "answer_fields"]

_SLIP_PER_TEMPERATURE = 0.12
_LUCK_PER_TEMPERATURE = 0.35


def _json(text: str, default: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _question_of(prompt: Prompt) -> str:
    if "question" in prompt.inputs:
        return prompt.inputs["question"]
    return next(iter(prompt.inputs.values()), "")


def _task(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    if "context" in prompt.inputs:  # a RAG answer: read from the passages alone
        answer, reasoning = answer_from_context(_question_of(prompt), prompt.inputs["context"])
        return {"reasoning": reasoning, "answer": answer}
    demos = tuple((d.get("question", ""), d.get("answer", "")) for d in prompt.demos)
    noise = Noise(
        slip=draws.chance("slip", _SLIP_PER_TEMPERATURE),
        lucky=draws.chance("lucky", _LUCK_PER_TEMPERATURE),
    )
    solution = solve(_question_of(prompt), Guidance(prompt.instructions, demos), noise)
    return {"reasoning": solution.reasoning, "answer": solution.answer}


def _feedback(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    names = _json(prompt.inputs.get("module_names", ""), None)
    if not isinstance(names, list) or not names:
        names = re.findall(r"[\w.]+", prompt.inputs.get("module_names", "")) or ["predict"]
    program_inputs = _json(prompt.inputs.get("program_inputs", ""), {})
    question = str(program_inputs.get("question", "")) if isinstance(program_inputs, dict) else ""
    expected = str((_json(prompt.inputs.get("oracle_metadata", ""), {}) or {}).get("answer", ""))
    worse = str((_json(prompt.inputs.get("worse_program_outputs", ""), {}) or {}).get("answer", ""))
    better = str(
        (_json(prompt.inputs.get("better_program_outputs", ""), {}) or {}).get("answer", "")
    )
    kind = diagnose(question, expected, worse)
    if kind is None:
        advice = (
            "If the module receives an arithmetic or lookup question, then it should work "
            "through each step, double-check the result and answer with the final value."
        )
        blame = "The worse answer shows no systematic mistake; it looks like a slip."
    else:
        advice = RULES[kind]
        blame = {
            "borrow": "the module subtracted column by column without borrowing",
            "word": "the module added the unit to the number, so exact match failed",
            "capital": "the module answered with a whole sentence instead of the name",
        }[kind]
    discussion = (
        f"For the question {question!r} the expected answer is {expected!r}. The worse "
        f"trajectory answered {worse!r}, the better one {better!r}: {blame}."
    )
    return {"discussion": discussion, "module_advice": {str(n): advice for n in names}}


_TIP_OPENINGS = {
    "persona": "You are a careful mathematics and geography tutor.",
    "high_stakes": "A student's final exam grade depends on every answer you give.",
    "creative": "Think like a puzzle master who never misses a detail.",
    "description": "Read each question closely, decide whether it is arithmetic, a word "
    "problem or a geography lookup, and solve it step by step.",
    "simple": "Answer the question.",
}
_TIP_RULE_CHANCE = {"description": 0.8, "simple": 0.25, "creative": 0.4}


def _tip_key(tip: str) -> str:
    lowered = tip.lower()
    for key, probe in (
        ("persona", "persona"),
        ("high_stakes", "high stakes"),
        ("creative", "creative"),
        ("description", "descriptive"),
        ("simple", "concise"),
    ):
        if probe in lowered:
            return key
    return "none"


def _proposal(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    basic = prompt.inputs.get("basic_instruction", "").strip() or "Answer the question."
    key = _tip_key(prompt.inputs.get("tip", ""))
    chance = _TIP_RULE_CHANCE.get(key, 0.5)
    rules = [text for kind, text in RULES.items() if draws.uniform(f"rule:{kind}") < chance]
    parts = [_TIP_OPENINGS.get(key, ""), basic, *rules]
    instruction = " ".join(p for p in parts if p)
    reasoning = (
        f"The task answers short questions; the tip asks for a {key.replace('_', ' ')} "
        f"instruction, so the proposal keeps the basic instruction and adds {len(rules)} rule(s)."
    )
    return {"reasoning": reasoning, "proposed_instruction": instruction}


def _search_query(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    query = search_query_for(_question_of(prompt), prompt.instructions)
    return {"reasoning": f"Search for: {query}.", "search_query": query}


def _describe_program(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    return {
        "reasoning": "The program has one predictor that maps a question to an answer.",
        "program_description": (
            "The program answers short questions (arithmetic, word problems about counting "
            "objects and capital cities) by passing the question to a single language model "
            "module that returns the answer."
        ),
    }


def _describe_module(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    return {
        "reasoning": "The module is the only step of the program.",
        "module_description": (
            "This module reads the question and produces the final answer directly, so its "
            "output must be exactly the expected value."
        ),
    }


def _observations(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    if "prior_observations" in prompt.inputs:
        return {"reasoning": "The new examples match what I saw.", "observations": "COMPLETE"}
    examples = prompt.inputs.get("examples", "")
    kinds = sorted({classify(q).kind for q in re.findall(r"question=['\"](.*?)['\"]", examples)})
    return {
        "reasoning": "I looked at the kinds of questions and the shape of the answers.",
        "observations": (
            f"The examples are short questions of these kinds: {', '.join(kinds) or 'unknown'}. "
            "Arithmetic questions use two or three numbers; word problems count objects; "
            "lookup questions ask for capital cities. Every answer is short: a bare number or "
            "a city name, with no units and no full sentence."
        ),
    }


def _summary(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    return {
        "reasoning": "The observations agree on the task and the answer format.",
        "summary": (
            "The dataset pairs short arithmetic, word-problem and capital-city questions with "
            "exact answers. Answers are a bare number or a city name, so precision and format "
            "matter more than explanation."
        ),
    }


_SKILLS: tuple[tuple[str, Callable[[Prompt, Draws], dict[str, Any]]], ...] = (
    ("module_advice", _feedback),
    ("new_instruction", reflect),
    ("proposed_prefix_for_output_field", copro_proposal),
    ("proposed_instruction", _proposal),
    ("program_description", _describe_program),
    ("module_description", _describe_module),
    ("observations", _observations),
    ("summary", _summary),
    ("search_query", _search_query),
    ("answer", _task),
)


def _placeholder(name: str, kind: str) -> Any:
    if kind.startswith("Literal[") and kind.endswith("]"):
        try:
            options = ast.literal_eval(f"[{kind[8:-1]}]")
        except (ValueError, SyntaxError):
            options = []
        return options[0] if options else ""
    if kind.startswith("dict"):
        return {}
    if kind.startswith(("list", "tuple")):
        return []
    if kind in ("int", "float"):
        return 0
    if kind == "bool":
        return False
    return f"The offline model has no skill for `{name}`."


def answer_fields(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    """Values for every output field of ``prompt``."""
    values: dict[str, Any] = {}
    for field_name, skill in _SKILLS:
        if field_name in prompt.outputs or (not prompt.outputs and field_name == "answer"):
            values = skill(prompt, draws)
            break
    for name, kind in prompt.outputs.items():
        if name not in values:
            values[name] = _placeholder(name, kind)
    return values
