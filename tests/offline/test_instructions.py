"""The offline LM as COPRO's instruction generator, GEPA's reflection LM, and with n > 1."""

from __future__ import annotations

import dataclasses
import json

import dspy
import pytest
from dspy.lm15 import Config, Message, Request
from dspy.teleprompt.copro_optimizer import (
    BasicGenerateInstruction,
    GenerateInstructionGivenAttempts,
)
from dspy.teleprompt.gepa.instruction_proposal import ProposeInstruction

from dspex.offline import RULES, OfflineEngine, exact_match_with_feedback, offline_lm
from dspex.offline.instructions import MISREAD_ADVICE
from dspex.offline.tasks import fixed_by_rule

BASE = "Given the fields `question`, produce the fields `answer`."


def _reflect(lm, current, examples):
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        return dspy.Predict(ProposeInstruction)(
            current_instruction=current, examples_with_feedback=examples
        ).new_instruction


def _example(question, expected, answer):
    gold = dspy.Example(question=question, answer=expected)
    feedback = exact_match_with_feedback(gold, dspy.Prediction(answer=answer)).feedback
    return {
        "Inputs": {"question": question},
        "Generated Outputs": {"answer": answer},
        "Feedback": feedback,
    }


def test_n_candidates_are_distinct_draws_at_temperature_and_reproducible():
    lm = offline_lm()
    with dspy.context(lm=lm):
        first = dspy.Predict(BasicGenerateInstruction, n=6, temperature=1.4)(basic_instruction=BASE)
        again = dspy.Predict(BasicGenerateInstruction, n=6, temperature=1.4)(basic_instruction=BASE)
    texts = first.completions.proposed_instruction
    assert len(texts) == 6 and len(set(texts)) > 1
    assert again.completions.proposed_instruction == texts
    assert lm.engine.calls == 12 and len(lm.history) == 2  # one request per candidate


@pytest.mark.parametrize("temperature, distinct", [(0.0, 1), (1.0, 2)])
def test_repeats_of_one_request_are_numbered_only_at_temperature(temperature, distinct):
    engine = OfflineEngine()
    system = (
        "Your input fields are:\n1. `basic_instruction` (str):\nYour output fields are:\n"
        "1. `proposed_instruction` (str):\n2. `proposed_prefix_for_output_field` (str):\n"
        "All interactions will be structured"
    )
    request = Request(
        model="offline/arith",
        system=system,
        messages=(Message.user(f"[[ ## basic_instruction ## ]]\n{BASE}"),),
        config=Config(temperature=temperature),
    )
    texts = [engine.complete(request).message.parts[0].text for _ in range(8)]
    assert len(set(texts)) >= distinct and (distinct == 1) == (len(set(texts)) == 1)
    # another request object (the next call) starts again; so does another engine
    assert engine.complete(dataclasses.replace(request)).message.parts[0].text == texts[0]
    assert OfflineEngine().complete(request).message.parts[0].text == texts[0]


def test_copro_first_depth_keeps_the_instruction_and_adds_some_rules():
    lm = offline_lm()
    with dspy.context(lm=lm):
        out = dspy.Predict(BasicGenerateInstruction, n=12, temperature=1.4)(basic_instruction=BASE)
    proposals = out.completions.proposed_instruction
    assert all(BASE in p for p in proposals)
    carried = {frozenset(k for k in RULES if fixed_by_rule(k, p)) for p in proposals}
    assert len(carried) > 2
    assert set(out.completions.proposed_prefix_for_output_field) <= {
        "Answer:",
        "Final answer:",
        "Result:",
    }


def test_copro_later_depths_build_on_the_best_attempt():
    best = f"{BASE} {RULES['word']}"
    attempts = [
        f"Instruction #1: {BASE}",
        "Prefix #1: Answer:",
        "Resulting Score #1: 37.5",
        f"Instruction #2: {best}",
        "Prefix #2: Result:",
        "Resulting Score #2: 56.25",
    ]
    with dspy.context(lm=offline_lm()):
        out = dspy.Predict(GenerateInstructionGivenAttempts, n=8, temperature=1.4)(
            attempted_instructions=attempts
        )
    proposals = out.completions.proposed_instruction
    assert all(p.startswith(best) for p in proposals)
    assert any(p != best for p in proposals)
    assert set(out.completions.proposed_prefix_for_output_field) == {"Result:"}


def test_gepa_reflection_adds_the_rule_for_each_mistake_the_feedback_shows():
    examples = [
        _example("What is 52 - 17?", "35", "45"),
        _example("What is the capital of Peru?", "Lima", "The capital of Peru is Lima."),
        _example("What is 2 + 2?", "4", "4"),
    ]
    outcomes = [_reflect(offline_lm(seed=seed), BASE, examples) for seed in range(30)]
    appended = [o for o in outcomes if o == f"{BASE} {RULES['borrow']} {RULES['capital']}"]
    misread = [o for o in outcomes if o == f"{BASE} {MISREAD_ADVICE}"]
    assert appended and misread and len(appended) + len(misread) == len(outcomes)
    # the same prompt gives the same reflection
    assert _reflect(offline_lm(seed=3), BASE, examples) == outcomes[3]


def test_gepa_reflection_sometimes_rewrites_and_loses_earlier_rules():
    current = f"{BASE} {RULES['borrow']}"
    examples = [
        _example(
            "Ana has 3 bags with 6 apples each. How many apples does Ana have?", "18", "18 apples"
        )
    ]
    outcomes = {_reflect(offline_lm(seed=seed), current, examples) for seed in range(40)}
    assert f"{current} {RULES['word']}" in outcomes  # appended
    assert f"{BASE} {RULES['word']}" in outcomes  # rewritten: the borrow rule is lost
    assert f"{current} {MISREAD_ADVICE}" in outcomes  # misread


@pytest.mark.parametrize("answer, score", [("35", 1.0), ("45", 0.0), (None, 0.0)])
def test_feedback_metric_scores_like_exact_match_and_says_what_was_expected(answer, score):
    gold = dspy.Example(question="What is 52 - 17?", answer="35")
    result = exact_match_with_feedback(gold, dspy.Prediction(answer=answer), None, "predict", None)
    assert result.score == score
    assert result.feedback.startswith(
        "Correct" if score else "Incorrect: the expected answer is '35'"
    )
    assert json.dumps(result.feedback)


def test_gepas_own_proposal_prompt_gets_the_same_reflection_in_a_code_block():
    """DSPy 3.2 and 3.3 send the gepa package's own proposal prompt as one plain message
    and read the instruction from the ``` block of the reply."""
    from gepa.strategies.instruction_proposal import InstructionProposalSignature

    samples = [
        {
            "Inputs": {"question": "What is 52 - 17?"},
            "Generated Outputs": {"answer": "45"},
            "Feedback": "Incorrect: the expected answer is '35', the response was '45'.",
        },
        {
            "Inputs": {"question": "Where?", "context": ["first passage", "second"]},
            "Generated Outputs": "a text",
            "Feedback": "Correct.",
        },
    ]
    prompt = InstructionProposalSignature.prompt_renderer(
        {"current_instruction_doc": BASE, "dataset_with_feedback": samples}
    )
    outcomes = set()
    for seed in range(20):
        lm = offline_lm(seed=seed)
        reply = lm(prompt)[0]
        outcomes.add(InstructionProposalSignature.output_extractor(reply)["new_instruction"])
    assert outcomes == {f"{BASE} {RULES['borrow']}", f"{BASE} {MISREAD_ADVICE}"}
    # the same examples through DSPy 3.4's signature: the same proposals
    as_signature = {
        _reflect(offline_lm(seed=seed), BASE, json.dumps(samples[:1])) for seed in range(20)
    }
    assert as_signature == outcomes
