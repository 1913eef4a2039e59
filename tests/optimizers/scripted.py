"""An LM written for these tests (not the offline LM): a two-predictor program whose
fixes conflict, so that GEPA has siblings to merge, and a generic answerer for the
proposal prompts of COPRO and MIPROv2.

The task: questions about ``alpha``, ``beta`` or ``gamma``. :class:`Router` sends alpha
and gamma questions to ``first`` and beta questions to ``second``. A predictor answers
alpha (beta) right only when its instruction contains ``fix-alpha`` (``fix-beta``), and
gamma right only when it does *not* contain ``fix-alpha``: fixing alpha breaks gamma.
Asked for a new instruction (any output field whose name has "instruction"), it appends
the fix its current instruction lacks. Every request is counted.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import dspy

from dspex.offline.lm import answering_lm

FIRST = "Answer the alpha and gamma questions."
SECOND = "Answer the beta questions."


class ScriptedEngine:
    """An answerer for :func:`dspex.offline.lm.answering_lm` (any supported DSPy)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> ScriptedEngine:
        # DSPy 3.2's LM.copy deep-copies the LM and so its engine (SIMBA's sampling LMs):
        # shared like a client connection, so that the counter sees every call
        return self

    def answer(self, model, system, messages, temperature, candidate=0):
        with self._lock:
            self.calls += 1
        user = messages[-1][1] if messages else ""
        section = system.split("Your output fields are:")[-1]
        outputs = re.findall(r"^\d+\. `(\w+)` \((.*?)\)", section, re.M)
        values = {name: self._value(name, kind, system, user) for name, kind in outputs}
        if "Outputs will be a JSON object" in system or "Respond with a JSON object" in user:
            text = json.dumps(values)
        else:
            text = "\n\n".join(
                f"[[ ## {k} ## ]]\n{json.dumps(v) if isinstance(v, dict | list) else v}"
                for k, v in values.items()
            )
            text += "\n\n[[ ## completed ## ]]"
        return text, 10, 5

    def _value(self, name: str, kind: str, system: str, user: str) -> object:
        if kind.startswith(("dict", "list")):
            return {} if kind.startswith("dict") else []
        if name == "answer":
            instruction = system.split("your objective is:")[-1]
            question = user.split("[[ ## question ## ]]")[-1]
            for topic in ("alpha", "beta"):
                if topic in question:
                    return topic.upper() if f"fix-{topic}" in instruction else "wrong"
            return "GAMMA" if "fix-alpha" not in instruction else "wrong"
        if "instruction" in name:
            current = re.search(
                r"\[\[ ## (?:current_instruction|basic_instruction) ## \]\]\n(.*?)\n\n", user, re.S
            )
            text = current.group(1) if current else "Answer."
            fix = "fix-alpha" if "alpha" in text else "fix-beta"
            return text if fix in text else f"{text} {fix}"
        if "prefix" in name:
            return "Answer:"
        return "ok"


def scripted_lm() -> dspy.LM:
    return answering_lm("test/scripted", ScriptedEngine())


class Router(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = dspy.Predict(dspy.Signature("question -> answer", FIRST))
        self.second = dspy.Predict(dspy.Signature("question -> answer", SECOND))

    def forward(self, question: str):
        return (self.second if "beta" in question else self.first)(question=question)


def topics(n: int = 3) -> list[dspy.Example]:
    return [
        dspy.Example(question=f"Question {i} about {topic}?", answer=topic.upper()).with_inputs(
            "question"
        )
        for topic in ("alpha", "beta", "gamma")
        for i in range(n)
    ]


def scripted_metric(gold, pred, trace=None, pred_name=None, pred_trace=None):
    answer = getattr(pred, "answer", None)
    score = float(answer == gold.answer)
    verdict = "Correct" if score else f"Incorrect: the expected answer is {gold.answer!r}"
    return dspy.Prediction(score=score, feedback=verdict)
