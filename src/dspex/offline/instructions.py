"""How the offline LM writes instructions for COPRO and reflects for GEPA.

Both behave like a fallible prompt engineer, so that the optimizers around them make
real choices:

* COPRO (``proposed_instruction`` + ``proposed_prefix_for_output_field``): at the first
  depth it keeps the basic instruction and adds each known rule (:data:`RULES`) with
  probability 0.5; later, given the attempts and their scores, it starts from the best
  attempt and adds each rule it still lacks with probability 0.5. Every one of COPRO's
  ``n`` candidates is its own draw, so candidates differ and some beat others.
* GEPA (``new_instruction``, from the reflective dataset): it reads the feedback of each
  example, diagnoses the mistakes it knows (see :func:`~dspex.offline.tasks.diagnose`)
  and appends the rule for each one the current instruction does not fix yet. Three
  times in ten it misreads the feedback and proposes advice that fixes nothing (GEPA
  then rejects it on the minibatch); two times in ten it rewrites the instruction
  around the new rules and loses the rules it had (a proposal GEPA may accept on the
  minibatch that is worse on other examples: the Pareto front then keeps both).

>>> from dspex.offline.prompt import Prompt
>>> from dspex.offline.draws import Draws
>>> example = {"Inputs": {"question": "What is 52 - 17?"}, "Generated Outputs": {"answer": "45"},
...            "Feedback": "Incorrect: the expected answer is '35', the response was '45'."}
>>> inputs = {"current_instruction": "Answer.", "examples_with_feedback": json.dumps([example])}
>>> prompt = Prompt(inputs=inputs)
>>> reflect(prompt, Draws(b"seed 0", 0.0))["new_instruction"].startswith("Answer. If the question")
True
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from dspex.offline.harbor import RAG_RULES, keeps_names, query_mistakes
from dspex.offline.tasks import RULES, diagnose, fixed_by_rule

if TYPE_CHECKING:
    from dspex.offline.draws import Draws
    from dspex.offline.prompt import Prompt

__all__ = ["copro_proposal", "gepa_prompt_reflection", "reflect"]

_OPENINGS = (
    "Solve the question carefully.",
    "Read the question, then answer it precisely.",
    "You answer short arithmetic, word-problem and geography questions.",
    "",
)
_PREFIXES = ("Answer:", "Final answer:", "Result:")
_FIRST_DEPTH_RULE_CHANCE = 0.5
_LATER_DEPTH_RULE_CHANCE = 0.5
_MISREAD_CHANCE = 0.3
_REWRITE_CHANCE = 0.2
#: What a misread reflection proposes: sensible-sounding, but it fixes no mistake kind.
MISREAD_ADVICE = "Think about the question step by step and double-check your work."
_ATTEMPT = re.compile(r"«(Instruction|Prefix|Resulting Score) #(\d+): (.*?)»", re.S)
_EXPECTED = re.compile(r"expected answer is (['\"])(.*?)\1", re.I)


def _with_rules(base: str, rules: list[str]) -> str:
    return " ".join(part for part in (base.strip(), *rules) if part)


def _attempts(text: str) -> list[tuple[str, str, float]]:
    """COPRO's attempts as ``(instruction, prefix, score)``, as listed (worst first)."""
    found: dict[int, dict[str, str]] = {}
    for label, number, value in _ATTEMPT.findall(text):
        found.setdefault(int(number), {})[label] = value.strip()
    attempts = []
    for number in sorted(found):
        parts = found[number]
        try:
            score = float(parts.get("Resulting Score", "0"))
        except ValueError:
            score = 0.0
        attempts.append((parts.get("Instruction", ""), parts.get("Prefix", ""), score))
    return attempts


def copro_proposal(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    """COPRO's BasicGenerateInstruction and GenerateInstructionGivenAttempts."""
    attempts = _attempts(prompt.inputs.get("attempted_instructions", ""))
    if attempts:
        base, prefix, _ = max(attempts, key=lambda a: a[2])
        chance = _LATER_DEPTH_RULE_CHANCE
    else:
        basic = prompt.inputs.get("basic_instruction", "").strip() or "Answer the question."
        base = _with_rules(draws.pick("opening", list(_OPENINGS)), [basic])
        prefix = draws.pick("prefix", list(_PREFIXES))
        chance = _FIRST_DEPTH_RULE_CHANCE
    rules = [
        text
        for kind, text in RULES.items()
        if not fixed_by_rule(kind, base) and draws.uniform(f"rule:{kind}") < chance
    ]
    return {
        "reasoning": f"Start from the best instruction so far and add {len(rules)} rule(s).",
        "proposed_instruction": _with_rules(base, rules),
        "proposed_prefix_for_output_field": prefix,
    }


def _examples(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _mistakes(examples: list[dict[str, Any]]) -> list[str]:
    """The mistake kinds the examples' feedback shows, in order of first appearance."""
    kinds: dict[str, None] = {}
    for example in examples:
        inputs = example.get("Inputs")
        if not isinstance(inputs, dict):
            inputs = {}
        outputs = example.get("Generated Outputs")
        answer = str(outputs.get("answer", "")) if isinstance(outputs, dict) else str(outputs)
        expected = _EXPECTED.search(str(example.get("Feedback", "")))
        if expected is None:
            continue
        kind = diagnose(str(inputs.get("question", "")), expected.group(2), answer)
        if kind is not None:
            kinds[kind] = None
    return list(kinds)


def _fixed(kind: str, instruction: str) -> bool:
    if kind in RAG_RULES:
        return keeps_names(instruction)
    return fixed_by_rule(kind, instruction)


def _without_rules(instruction: str) -> str:
    for text in (*RULES.values(), *RAG_RULES.values(), MISREAD_ADVICE):
        instruction = instruction.replace(text, "")
    return " ".join(instruction.split())


def reflect(prompt: Prompt, draws: Draws) -> dict[str, Any]:
    """GEPA's ProposeInstruction: a new instruction from the examples and their feedback."""
    current = prompt.inputs.get("current_instruction", "").strip()
    examples = _examples(prompt.inputs.get("examples_with_feedback", ""))
    missing = [
        kind for kind in _mistakes(examples) + query_mistakes(examples) if not _fixed(kind, current)
    ]
    chance = draws.uniform("reflection")
    if missing and chance >= _MISREAD_CHANCE:
        rules = [{**RULES, **RAG_RULES}[kind] for kind in missing]
        if chance < _MISREAD_CHANCE + _REWRITE_CHANCE:
            return {"new_instruction": _with_rules(_without_rules(current), rules)}
        return {"new_instruction": _with_rules(current, rules)}
    if MISREAD_ADVICE in current:
        return {"new_instruction": current}
    return {"new_instruction": _with_rules(current, [MISREAD_ADVICE])}


# -- GEPA's own proposer (DSPy 3.2 and 3.3): a plain prompt, the answer in ``` blocks -------

_GEPA_TASK = "Your task is to write a new instruction for the assistant."
_GEPA_CURRENT = re.compile(r"perform a task for me:\n```\n(.*?)\n```\n", re.S)
_GEPA_SAMPLES = re.compile(r"could be better:\n```\n(.*)\n```\n\nYour task is", re.S)
_HEADER = re.compile(r"^(#{1,6}) (.*)$")


def _markdown_samples(text: str) -> list[dict[str, Any]]:
    """GEPA's examples as its prompt renders them (``# Example 1``, ``## Inputs``,
    ``### question``...) back into dicts: a ``##`` section with ``###`` headers is a dict
    of their texts, one without is a text."""
    examples: list[dict[str, Any]] = []
    key: str | None = None
    sub: str | None = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        level = len(header.group(1)) if header else 0
        if header and level == 1 and header.group(2).startswith("Example"):
            examples.append({})
            key = sub = None
        elif header and level == 2 and examples:
            key, sub = header.group(2), None
            examples[-1][key] = ""
        elif header and level == 3 and examples and key is not None:
            sub = header.group(2)
            section = examples[-1][key]
            examples[-1][key] = {**(section if isinstance(section, dict) else {}), sub: ""}
        elif examples and key is not None:
            section = examples[-1][key]
            if isinstance(section, dict) and sub is not None:
                section[sub] = (section[sub] + "\n" + line).strip()
            elif isinstance(section, str):
                examples[-1][key] = (section + "\n" + line).strip()
    return examples


def gepa_prompt_reflection(text: str, draws: Draws) -> str | None:
    """The reply to GEPA's own instruction proposal prompt (the ``gepa`` package's
    ``InstructionProposalSignature``, which DSPy 3.2 and 3.3 send as one plain user
    message): :func:`reflect` on the current instruction and the examples, the new
    instruction in a ``` block. None for any other prompt."""
    if _GEPA_TASK not in text:
        return None
    current = _GEPA_CURRENT.search(text)
    samples = _GEPA_SAMPLES.search(text)
    if current is None or samples is None:
        return None
    inputs = {
        "current_instruction": current.group(1),
        "examples_with_feedback": json.dumps(_markdown_samples(samples.group(1))),
    }
    from dspex.offline.prompt import Prompt

    proposal = reflect(Prompt(inputs=inputs), draws)["new_instruction"]
    return f"```\n{proposal}\n```"
