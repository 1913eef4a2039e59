"""The small dataset bundled with dspex, and the metric that scores it.

``load_arith()`` returns ``(train, dev)``: 32 and 20 ``dspy.Example`` objects with
``question`` as the input and ``answer`` as the label (plus ``kind``, one of
``arith``, ``borrow``, ``word``, ``capital``, for slicing results)::

    >>> train, dev = load_arith()
    >>> len(train), len(dev)
    (32, 20)
    >>> list(train[0].inputs().keys())
    ['question']
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["exact_match", "exact_match_with_feedback", "load_arith", "load_rows"]

_SPLITS = ("train", "dev")


def load_rows(name: str = "arith") -> list[dict[str, str]]:
    """The raw rows of a bundled dataset (``question``, ``answer``, ``kind``, ``split``)."""
    text = resources.files("dspex.offline").joinpath("data", f"{name}.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_arith() -> tuple[list[Any], list[Any]]:
    """The arithmetic / lookup dataset as ``(train, dev)`` lists of ``dspy.Example``."""
    import dspy

    splits: dict[str, list[Any]] = {name: [] for name in _SPLITS}
    for row in load_rows("arith"):
        example = dspy.Example(question=row["question"], answer=row["answer"], kind=row["kind"])
        splits[row["split"]].append(example.with_inputs("question"))
    return splits["train"], splits["dev"]


def _normalize(value: Any) -> str:
    return " ".join(str(value).split()).strip().rstrip(".").lower()


def exact_match(example: Any, pred: Any, trace: Any = None) -> float:
    """1.0 when the predicted answer equals the label, else 0.0.

    Case, surrounding whitespace and one trailing period are ignored; anything else
    (a unit, a full sentence, a wrong digit) is a miss. A missing prediction scores 0.

    >>> import dspy
    >>> ex = dspy.Example(question="q", answer="42")
    >>> exact_match(ex, dspy.Prediction(answer=" 42 "))
    1.0
    >>> exact_match(ex, dspy.Prediction(answer="42 apples"))
    0.0
    """
    answer = getattr(pred, "answer", None) if pred is not None else None
    if answer is None:
        return 0.0
    return 1.0 if _normalize(answer) == _normalize(example.answer) else 0.0


def exact_match_with_feedback(
    gold: Any,
    pred: Any,
    trace: Any = None,
    pred_name: str | None = None,
    pred_trace: Any = None,
) -> Any:
    """:func:`exact_match` as GEPA wants a metric: ``dspy.Prediction(score, feedback)``.

    The feedback says whether the answer matched and, when it did not, what was
    expected and what came back; it gives no hint of how to fix it.

    >>> import dspy
    >>> ex = dspy.Example(question="What is 52 - 17?", answer="35")
    >>> exact_match_with_feedback(ex, dspy.Prediction(answer="45")).feedback
    "Incorrect: the expected answer is '35', the response was '45'."
    """
    import dspy

    score = exact_match(gold, pred)
    answer = getattr(pred, "answer", None) if pred is not None else None
    if score:
        feedback = f"Correct: the response {answer!r} matches the expected answer."
    else:
        feedback = (
            f"Incorrect: the expected answer is {gold.answer!r}, the response was {answer!r}."
        )
    return dspy.Prediction(score=score, feedback=feedback)
