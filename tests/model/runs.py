"""One small recorded experiment per optimizer on the offline LM.

The event-format tests check what these record. The same code, run at commit 611b0fb
(before payloads were typed) and trimmed, made the format-1 records in ``data/format1``::

    PYTHONPATH=<a checkout of 611b0fb>/src python -m tests.model.runs <dir> [optimizer...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import dspy

import dspex
from dspex.offline import ArithQA, exact_match, load_arith, offline_lm


def _gepa_metric(gold, pred, trace=None, pred_name=None, pred_trace=None):
    ok = exact_match(gold, pred)
    return dspy.Prediction(score=float(ok), feedback="correct" if ok else f"expected {gold.answer}")


def _lengths(texts):
    return [[float(len(t)), float(t.count(" "))] for t in texts]


def _optimizers(train, dev) -> dict[str, Any]:
    return {
        "bootstrap": lambda: (
            dspy.BootstrapFewShot(metric=exact_match, max_bootstrapped_demos=2), {}
        ),
        "random_search": lambda: (
            dspy.BootstrapFewShotWithRandomSearch(
                metric=exact_match, max_bootstrapped_demos=2, num_candidate_programs=2,
                num_threads=1,
            ),
            {},
        ),
        "labeled": lambda: (dspy.LabeledFewShot(k=2), {}),
        "knn": lambda: (
            dspy.KNNFewShot(k=2, trainset=train, vectorizer=dspy.Embedder(_lengths)), None
        ),
        "copro": lambda: (
            dspy.COPRO(metric=exact_match, breadth=2, depth=1), {"eval_kwargs": {"num_threads": 1}}
        ),
        "mipro": lambda: (
            dspy.MIPROv2(metric=exact_match, auto=None, num_candidates=2, num_threads=1),
            {"num_trials": 2, "minibatch": False},
        ),
        "simba": lambda: (
            dspy.SIMBA(metric=exact_match, bsize=4, num_candidates=2, max_steps=2, max_demos=2,
                       num_threads=1),
            {"seed": 0},
        ),
        "gepa": lambda: (
            dspy.GEPA(metric=_gepa_metric, max_metric_calls=40, reflection_lm=offline_lm(),
                      num_threads=1),
            {"valset": dev},
        ),
    }  # fmt: skip


OPTIMIZERS = tuple(_optimizers([], []))


def record(name: str, store: dspex.ResultStore) -> dspex.Experiment:
    """A baseline evaluation and a compile of optimizer ``name``, recorded in ``store``."""
    train, dev = load_arith()
    train, dev = train[:12], dev[:6]
    with dspy.context(lm=offline_lm()):
        optimizer, options = _optimizers(train, dev)[name]()
        with dspex.experiment(f"format {name}", store=store) as exp:
            exp.evaluate(ArithQA(), dev, metric=exact_match, name="baseline")
            if options is None:  # KNNFewShot takes its trainset when it is made
                optimizer.compile(ArithQA())
            else:
                optimizer.compile(ArithQA(), trainset=train, **options)
    return store.get_experiment(exp.id)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    memory = dspex.ResultStore.open("memory://")
    for optimizer_name in sys.argv[2:] or OPTIMIZERS:
        recorded = record(optimizer_name, memory)
        text = json.dumps(recorded.to_dict(), separators=(",", ":"))
        (out / f"{optimizer_name}.json").write_text(text)
