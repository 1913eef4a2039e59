"""The bundled dataset loads as dspy Examples and the metric scores exactly."""

from __future__ import annotations

from collections import Counter

import dspy

from dspex.offline import exact_match, load_arith, load_rows
from dspex.offline.tasks import classify


def test_splits_sizes_and_inputs():
    train, dev = load_arith()
    assert (len(train), len(dev)) == (32, 20)
    assert all(set(ex.inputs().keys()) == {"question"} for ex in train + dev)
    assert not {ex.question for ex in train} & {ex.question for ex in dev}


def test_labels_are_the_right_answers_and_kinds_are_mixed():
    rows = load_rows()
    for row in rows:
        problem = classify(row["question"])
        assert (problem.answer, problem.kind) == (row["answer"], row["kind"]), row
    for split in ("train", "dev"):
        kinds = Counter(r["kind"] for r in rows if r["split"] == split)
        assert set(kinds) == {"arith", "borrow", "word", "capital"}


def test_exact_match():
    ex = dspy.Example(question="q", answer="New Delhi").with_inputs("question")
    assert exact_match(ex, dspy.Prediction(answer="new delhi.")) == 1.0
    assert exact_match(ex, dspy.Prediction(answer="The capital of India is New Delhi.")) == 0.0
    assert exact_match(ex, None) == 0.0
    assert exact_match(ex, dspy.Prediction(reasoning="x")) == 0.0
