"""exp.evaluate records over which examples its score was measured."""

from __future__ import annotations

import dspy

import dspex
from dspex.model import example_key, examples_fingerprint
from dspex.offline import ArithQA

from .conftest import addition_set, exact


def test_an_evaluation_records_its_score_scope(lm, store):
    program = ArithQA()
    devset, test = addition_set(6), addition_set(4, offset=3)
    with dspex.experiment("scoped", program=program, store=store) as exp:
        first = exp.evaluate(program, devset, exact, name="baseline")
        again = exp.evaluate(program, list(reversed(devset)), exact, name="again")
        held_out = exp.evaluate(program, test, exact, name="held out", scope="test")
    scope = first.score_scope
    assert scope is not None and (scope.name, scope.n, scope.metric) == ("dev", 6, "exact")
    keys = [example_key({"question": e.question}, {"answer": e.answer}) for e in devset]
    assert scope.fingerprint == examples_fingerprint(keys)
    assert scope.comparable_with(again.score_scope)  # the same examples, in another order
    assert held_out.score_scope.name == "test"
    assert not scope.comparable_with(held_out.score_scope)
    trial_score = [e for e in held_out.events if e.kind.value == "trial_score"][-1]
    assert trial_score.payload["scope"] == "test"
    assert store.get_experiment(exp.id).trials[0].score_scope == scope


class Guess(dspy.Module):
    """A baseline that answers 0 to everything."""

    def forward(self, question):
        return dspy.Prediction(answer="0")


def test_the_sealed_record_carries_the_verdict_on_its_hypothesis(lm, store):
    program, devset = ArithQA(), addition_set(8, offset=1)
    with dspex.experiment("decided", program=program, store=store, hypothesis="LMs add") as exp:
        exp.evaluate(Guess(), devset, exact, name="baseline")
        exp.evaluate(program, devset, exact, name="final")
    hypothesis = store.get_experiment(exp.id).hypothesis
    verdict = hypothesis.verdict
    assert verdict is not None and verdict.outcome.value == "validated"
    assert hypothesis.status.value == "validated"
    assert (verdict.n, verdict.wins, verdict.losses, verdict.effect) == (8, 8, 0, 1.0)
    assert verdict.test == "exact McNemar" and verdict.p_value == 2 / 2**8
