"""Real DSPy optimizers make real decisions with the offline LM.

These are the proof that the demo works: SIMBA writes rules (OfferFeedback) and adds
demos and beats the baseline on dev; MIPROv2 proposes instructions with the LM and
completes; BootstrapFewShot keeps the traces that pass and drops the ones that fail.
"""

from __future__ import annotations

import json
import threading
import time

import dspy
import pytest
from dspy.utils.callback import BaseCallback

from dspex.offline import RULES, exact_match, load_arith, offline_lm

pytestmark = pytest.mark.slow


def _dev_score(program, lm) -> float:
    _, dev = load_arith()
    with dspy.context(lm=lm):
        return dspy.Evaluate(devset=dev, metric=exact_match, num_threads=2)(program).score


class _LMOutputs(BaseCallback):
    """Every text the LM returned, seen through DSPy's public callbacks (copies included)."""

    def __init__(self):
        self.texts: list[str] = []
        self.starts = 0
        self._lock = threading.Lock()

    def on_lm_start(self, call_id, instance, inputs):
        with self._lock:
            self.starts += 1

    def on_lm_end(self, call_id, outputs, exception=None):
        with self._lock:
            self.texts.extend(
                o if isinstance(o, str) else str(o.get("text", o)) for o in outputs or []
            )

    def field(self, name: str) -> list[str]:
        marker = f"[[ ## {name} ## ]]"
        return [t.split(marker)[1].split("[[ ## ")[0].strip() for t in self.texts if marker in t]


@pytest.mark.parametrize("module", [dspy.Predict, dspy.ChainOfThought])
def test_simba_writes_rules_adds_demos_and_beats_the_baseline(module):
    train, _ = load_arith()
    lm, seen = offline_lm(), _LMOutputs()
    baseline = _dev_score(module("question -> answer"), lm)
    calls_before = lm.engine.calls
    started = time.perf_counter()
    with dspy.context(lm=lm, callbacks=[seen]):
        simba = dspy.SIMBA(
            metric=exact_match, max_steps=4, bsize=8, num_candidates=4, num_threads=2
        )
        best = simba.compile(module("question -> answer"), trainset=train, seed=0)
    assert time.perf_counter() - started < 30
    # Rollouts run on copies of the LM; they share its engine, so nothing goes uncounted.
    assert lm.engine.calls - calls_before == seen.starts == len(seen.texts) > 0

    advice = [json.loads(text) for text in seen.field("module_advice")]
    assert advice, "SIMBA never asked the LM for feedback (append_a_rule)"
    assert any(text in RULES.values() for call in advice for text in call.values())
    candidates = [c["program"] for c in best.candidate_programs]
    demos = [d for program in candidates for p in program.predictors() for d in p.demos]
    assert demos and all(d.get("augmented") for d in demos), "no append_a_demo decision"
    instructions = [
        p.signature.instructions for program in candidates for p in program.predictors()
    ]
    assert any(rule in text for text in instructions for rule in RULES.values())

    optimized = _dev_score(best, lm)
    assert optimized > baseline


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_miprov2_proposes_instructions_with_the_lm_and_completes():
    train, _ = load_arith()
    lm, seen = offline_lm(), _LMOutputs()
    baseline = _dev_score(dspy.Predict("question -> answer"), lm)
    with dspy.context(lm=lm, callbacks=[seen]):
        mipro = dspy.MIPROv2(metric=exact_match, auto=None, num_candidates=4, num_threads=2, seed=0)
        best = mipro.compile(
            dspy.Predict("question -> answer"),
            trainset=train[:20],
            valset=train[20:],
            num_trials=5,
            minibatch=False,
            max_bootstrapped_demos=2,
            max_labeled_demos=2,
        )
    proposals = seen.field("proposed_instruction")
    assert len(proposals) >= 3
    carried = {frozenset(k for k, rule in RULES.items() if rule in p) for p in proposals}
    assert len(carried) > 1, "proposals should differ in the rules they carry"
    assert any(carried), "no proposal carries a fixing rule"
    assert _dev_score(best, lm) >= baseline


def test_bootstrap_fewshot_keeps_passing_traces_only():
    train, _ = load_arith()
    lm = offline_lm()
    with dspy.context(lm=lm):
        bootstrap = dspy.BootstrapFewShot(
            metric=exact_match, max_bootstrapped_demos=4, max_labeled_demos=0
        )
        compiled = bootstrap.compile(dspy.Predict("question -> answer"), trainset=train)
    demos = compiled.demos
    assert len(demos) == 4
    by_question = {ex.question: ex for ex in train}
    assert all(exact_match(by_question[d.question], d) == 1.0 for d in demos)
    # The examples tried before the last demo include failures that did not become demos.
    tried = train[: [ex.question for ex in train].index(demos[-1].question) + 1]
    failed = [ex for ex in tried if ex.question not in {d.question for d in demos}]
    assert failed and all(ex.kind in {"borrow", "word", "capital"} for ex in failed)


def test_copro_candidates_differ_and_later_depths_improve():
    train, _ = load_arith()
    lm = offline_lm()
    baseline = _dev_score(dspy.Predict("question -> answer"), lm)
    with dspy.context(lm=lm):
        copro = dspy.COPRO(metric=exact_match, breadth=4, depth=3, init_temperature=1.4)
        best = copro.compile(
            dspy.Predict("question -> answer"),
            trainset=train,
            eval_kwargs={"num_threads": 2, "display_progress": False},
        )
    by_depth: dict[int, list[float]] = {}
    for candidate in best.candidate_programs:
        by_depth.setdefault(candidate["depth"], []).append(candidate["score"])
    assert len({c["instruction"] for c in best.candidate_programs}) > 3
    assert max(by_depth[max(by_depth)]) > max(by_depth[0])
    assert _dev_score(best, lm) > baseline


def test_gepa_reflection_accepts_rejects_and_improves():
    from dspex.offline import exact_match_with_feedback

    train, dev = load_arith()
    lm = offline_lm()
    verdicts = {"accepted": 0, "rejected": 0, "skipped": 0}

    class Verdicts:
        def on_candidate_accepted(self, event):
            verdicts["accepted"] += 1

        def on_candidate_rejected(self, event):
            verdicts["rejected"] += 1

        def on_evaluation_skipped(self, event):
            verdicts["skipped"] += 1

    with dspy.context(lm=lm):
        gepa = dspy.GEPA(
            metric=exact_match_with_feedback,
            max_metric_calls=150,
            reflection_lm=lm,
            num_threads=2,
            track_stats=True,
            gepa_kwargs={"callbacks": [Verdicts()]},
        )
        best = gepa.compile(dspy.Predict("question -> answer"), trainset=train, valset=dev)
    scores = best.detailed_results.val_aggregate_scores
    assert all(verdicts.values()), verdicts
    assert max(scores) > scores[0]
    assert any(rule in best.signature.instructions for rule in RULES.values())
