"""What a real run can hand capture that JSON cannot hold: the run is still sealed, and
everything is recorded (non-finite scores as numbers, the rest as text)."""

from __future__ import annotations

import math

import dspy
import pytest

import dspex
from dspex import ExperimentStatus, TraceViewer
from dspex.offline import ArithQA
from dspex.offline.lm import answering_lm

from .conftest import addition_set


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_metric_returning_a_non_finite_value_still_seals_the_experiment(lm, store, value):
    returns = [value]

    def wild(example, prediction, trace=None) -> float:
        return returns[0]

    program = ArithQA()
    with dspex.experiment("wild", program=program, program_name="qa", store=store) as exp:
        trial = exp.evaluate(program, addition_set(3), wild)
        returns[0] = 0.5  # the same examples and metric: the two scores are comparable
        exp.evaluate(program, addition_set(3), wild, name="finite")
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.COMPLETED
    assert repr(archived.trial(trial.id).score) == repr(value)  # recorded as it was
    assert archived.best_trial_id != trial.id  # but never ranked
    assert archived.summary is not None and archived.summary.trial_scores is not None
    assert archived.summary.trial_scores.non_finite == 1
    assert "non-finite" in str(TraceViewer.view_experiment(exp.id, store=store))


class SurrogateEngine:
    """Answers with a truncated emoji: half of a surrogate pair, as some LMs cut text."""

    def answer(self, model, system, messages, temperature, candidate=0):
        return "[[ ## answer ## ]]\n4 " + chr(0xD83D) + "\n\n[[ ## completed ## ]]", 1, 1


def test_a_lone_surrogate_in_an_lm_response_is_recorded_as_text(store):
    engine = SurrogateEngine()
    lm = answering_lm("test/cut", engine)
    program = ArithQA()
    with dspy.context(lm=lm):
        with dspex.experiment("cut", program=program, program_name="qa", store=store) as exp:
            trial = exp.evaluate(program, addition_set(2), lambda e, p, trace=None: 1.0)
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.COMPLETED
    stored = archived.trial(trial.id)
    responses = [e.payload["response"] for e in stored.events if e.kind.value == "lm_call"]
    assert responses and all("4 \\ud83d" in "".join(r) for r in responses)
    assert store.verify() == []


class Huge(dspy.Module):
    def forward(self, question: str) -> dspy.Prediction:
        return dspy.Prediction(answer=7 * 10**5000)


def test_an_integer_too_long_for_json_is_recorded_as_its_digits(lm, store):
    program = Huge()
    with dspex.experiment("huge", program=program, program_name="huge", store=store) as exp:
        trial = exp.evaluate(program, addition_set(1), lambda e, p, trace=None: 0.0)
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.COMPLETED
    [result] = archived.trial(trial.id).example_results
    assert result.prediction == {"answer": "7" + "0" * 5000}
    assert store.verify() == []
