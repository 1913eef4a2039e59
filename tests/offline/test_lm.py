"""The offline LM is a real dspy.LM: adapters, determinism, temperature, counting, saving."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import cloudpickle
import dspy
import pytest
from dspy.lm15 import Message, Request
from dspy.utils.callback import BaseCallback

import dspex
from dspex.offline import OfflineEngine, exact_match, load_arith, offline_lm
from dspex.offline.tasks import RULES


def _questions() -> list[str]:
    train, dev = load_arith()
    return [ex.question for ex in train + dev]


def _answers(lm, questions, program=None) -> list[str]:
    program = program or dspy.Predict("question -> answer")
    with dspy.context(lm=lm):
        return [program(question=q).answer for q in questions]


def test_predict_and_chain_of_thought_through_the_chat_adapter():
    lm = offline_lm()
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
        assert dspy.Predict("question -> answer")(question="What is 17 + 25?").answer == "42"
        cot = dspy.ChainOfThought("question -> answer")(question="What is 52 - 17?")
    assert (cot.answer, cot.reasoning) == ("45", "52 - 17 = 45. So the answer is 45.")


def test_json_adapter_answers_and_feedback_dict():
    lm = offline_lm()
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        cot = dspy.ChainOfThought("question -> answer")(question="What is 9 * 7?")
        assert cot.answer == "63"
        assert json.loads(lm.history[-1]["outputs"][0])["answer"] == "63"
        advice = _offer_feedback(
            ["predict"], "What is the capital of Peru?", "Lima", "The capital of Peru is Lima."
        )
    assert advice.module_advice == {"predict": RULES["capital"]}


def _offer_feedback(names, question, expected, worse):
    from dspy.teleprompt.simba_utils import OfferFeedback

    return dspy.Predict(OfferFeedback)(
        program_code="class P(dspy.Module): ...",
        modules_defn="Module predict",
        program_inputs=json.dumps({"question": question}),
        oracle_metadata=json.dumps({"answer": expected}),
        worse_program_trajectory="[]",
        worse_program_outputs=json.dumps({"answer": worse}),
        worse_reward_value=0.0,
        worse_reward_info="{}",
        better_program_trajectory="[]",
        better_program_outputs=json.dumps({"answer": expected}),
        better_reward_value=1.0,
        better_reward_info="{}",
        module_names=names,
    )


@pytest.mark.parametrize(
    ("question", "expected", "worse", "kind"),
    [
        ("What is 52 - 17?", "35", "45", "borrow"),
        (
            "Ann has 3 bags with 6 apples each. How many apples does Ann have?",
            "18",
            "18 apples",
            "word",
        ),
        ("What is the capital of Peru?", "Lima", "The capital of Peru is Lima.", "capital"),
    ],
)
def test_offer_feedback_advice_is_the_rule_that_fixes_the_worse_answer(
    question, expected, worse, kind
):
    lm = offline_lm()
    with dspy.context(lm=lm):
        advice = _offer_feedback(["first", "second"], question, expected, worse)
        assert advice.module_advice == {"first": RULES[kind], "second": RULES[kind]}
        assert repr(worse) in advice.discussion
        # Appended as SIMBA's append_a_rule does, the advice fixes the mistake.
        program = dspy.Predict("question -> answer")
        base = program.signature.instructions
        program.signature = program.signature.with_instructions(
            base + "\n\n" + advice.module_advice["first"]
        )
        assert program(question=question).answer == expected


def test_same_call_twice_gives_the_same_answer_and_threads_change_nothing():
    questions = _questions()
    lm = offline_lm(temperature=0.7)
    sequential = _answers(lm, questions)
    assert _answers(lm, questions) == sequential

    # Each thread gets a program of its own, built here: CPython 3.11 keeps the AST
    # constructor's recursion depth in state all threads share (python/cpython#106905), so
    # threads that parse "question -> answer" at the same moment can raise SystemError.
    programs = [dspy.Predict("question -> answer") for _ in questions]

    def one(question, program):
        return _answers(lm, [question], program)[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(one, questions, programs))
    assert concurrent == sequential
    assert lm.engine.calls == 3 * len(questions)


def test_temperature_varies_answers_reproducibly_and_by_seed():
    questions = _questions()
    cold = _answers(offline_lm(), questions)
    hot = _answers(offline_lm(temperature=1.0), questions)
    assert hot == _answers(offline_lm(temperature=1.0), questions)
    assert hot != cold
    assert _answers(offline_lm(seed=1, temperature=1.0), questions) != hot
    # At temperature 0 the seed does not matter: the model is fully determined.
    assert _answers(offline_lm(seed=1), questions) == cold


def test_token_usage_counts_whitespace_tokens():
    lm = offline_lm()
    with dspy.context(lm=lm):
        dspy.Predict("question -> answer")(question="What is 2 + 3?")
    entry = lm.history[-1]
    usage, output = entry["usage"], entry["outputs"][0]
    prompt_text = "\n".join(
        m["content"] if m["role"] == "system" else f"{m['role']}: {m['content']}"
        for m in entry["messages"]
    )
    assert usage["completion_tokens"] == len(output.split())
    assert usage["prompt_tokens"] == len(prompt_text.split()) > 20
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


class _CountLMCalls(BaseCallback):
    def __init__(self):
        self.starts = 0

    def on_lm_start(self, call_id, instance, inputs):
        self.starts += 1


def test_calls_are_counted_per_lm_and_match_callback_events():
    train, dev = load_arith()
    counter = _CountLMCalls()
    lm, other = offline_lm(), offline_lm()
    with dspy.context(lm=lm, callbacks=[counter]):
        evaluate = dspy.Evaluate(devset=dev, metric=exact_match, num_threads=2)
        evaluate(dspy.ChainOfThought("question -> answer"))
    assert lm.engine.calls == counter.starts == len(dev)
    assert lm.engine.calls_by_model == {"offline/arith": len(dev)}
    assert other.engine.calls == 0
    lm.engine.reset_calls()
    assert lm.engine.calls == 0


def test_async_calls_share_the_counter():
    lm = offline_lm()

    async def ask():
        with dspy.context(lm=lm):
            return await dspy.Predict("question -> answer").acall(question="What is 52 - 17?")

    assert asyncio.run(ask()).answer == "45"
    assert lm.engine.calls == 1


def test_explicit_request_and_stream():
    lm = offline_lm()
    request = Request(
        model="offline/arith", messages=(Message.user("[[ ## question ## ]]\nWhat is 2 + 3?"),)
    )
    response = lm(request)
    assert "[[ ## answer ## ]]\n5" in response.text
    assert response.usage.input_tokens == len("user: [[ ## question ## ]]\nWhat is 2 + 3?".split())
    events = list(lm.engine.stream(request))
    assert events[0].type == "start" and events[-1].type == "end"


def test_cloudpickle_round_trip_keeps_answers_seed_and_count():
    lm = offline_lm(seed=3, temperature=1.0)
    program = dspy.Predict("question -> answer")
    program.set_lm(lm)
    before = [program(question=q).answer for q in _questions()[:10]]
    copy = cloudpickle.loads(cloudpickle.dumps(program))
    copied_lm = copy.get_lm()
    assert isinstance(copied_lm.engine, OfflineEngine) and copied_lm.engine.seed == 3
    assert copied_lm.engine.calls == 10
    assert [copy(question=q).answer for q in _questions()[:10]] == before
    assert copied_lm.engine.calls == 20 and lm.engine.calls == 10


def test_dump_state_load_state_round_trip():
    lm = offline_lm(seed=5, temperature=1.0, latency=0.0)
    state = lm.dump_state()
    assert json.loads(json.dumps(state)) == state
    assert state["engine"] == {
        "class": "dspex.offline.lm:OfflineEngine",
        "state": {"seed": 5, "latency": 0.0},
    }
    with pytest.raises(ValueError, match="allow_unsafe_lm_state"):
        dspy.LM.load_state(state)
    loaded = dspy.LM.load_state(state, allow_custom_lm_class=True)
    assert isinstance(loaded.engine, OfflineEngine) and loaded.engine.seed == 5
    questions = _questions()
    assert _answers(loaded, questions) == _answers(lm, questions)


def test_a_pickled_program_answers_the_same_in_another_process(tmp_path):
    lm = offline_lm(temperature=1.0)
    program = dspy.ChainOfThought("question -> answer")
    program.set_lm(lm)
    questions = _questions()[:6]
    expected = [program(question=q).answer for q in questions]
    (tmp_path / "program.pkl").write_bytes(cloudpickle.dumps((program, questions)))
    script = (
        "import sys, cloudpickle\n"
        "program, questions = cloudpickle.loads(open(sys.argv[1], 'rb').read())\n"
        "print('\\n'.join(program(question=q).answer for q in questions))\n"
        "print(program.get_lm().engine.calls)\n"
    )
    src = str(Path(dspex.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "program.pkl")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert lines == [*expected, str(2 * len(questions))]


def test_unknown_model_is_refused_with_the_valid_names():
    with pytest.raises(dspex.ValidationError, match="offline/arith"):
        offline_lm("offline/gpt")


class Extra(dspy.Signature):
    """Answer, and fill fields the offline model has no skill for."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField()
    confidence: float = dspy.OutputField()
    sure: bool = dspy.OutputField()
    tags: list[str] = dspy.OutputField()
    verdict: Literal["yes", "no"] = dspy.OutputField()


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()])
def test_unknown_typed_fields_get_parseable_placeholders(adapter):
    with dspy.context(lm=offline_lm(), adapter=adapter):
        pred = dspy.Predict(Extra)(question="What is 6 * 7?")
    assert (pred.answer, pred.confidence, pred.sure, pred.tags, pred.verdict) == (
        "42",
        0.0,
        False,
        [],
        "yes",
    )


def test_more_temperature_means_more_slips():
    train, dev = load_arith()
    plain = [ex for ex in train + dev if ex.kind == "arith"]
    questions = [ex.question for ex in plain]

    def misses(temperature):
        answers = _answers(offline_lm(temperature=temperature), questions)
        return sum(a != ex.answer for a, ex in zip(answers, plain, strict=True))

    assert misses(0.0) == 0
    assert misses(0.3) < misses(2.0)


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()])
def test_demos_in_the_prompt_fix_their_kind_under_both_adapters(adapter):
    program = dspy.ChainOfThought("question -> answer")
    with dspy.context(lm=offline_lm(), adapter=adapter):
        assert program(question="What is 52 - 17?").answer == "45"
        program.predict.demos = [
            dspy.Example(
                question="What is 71 - 22?", reasoning="borrow", answer="49", augmented=True
            )
        ]
        fixed = program(question="What is 52 - 17?")
    assert fixed.answer == "35"
    assert fixed.reasoning.startswith("Following the worked example")


def test_deep_copies_of_programs_share_the_engine_and_its_counter():
    lm = offline_lm()
    program = dspy.Predict("question -> answer")
    program.set_lm(lm)
    copied = program.deepcopy()
    assert copied.get_lm() is not lm and copied.get_lm().engine is lm.engine
    copied(question="What is 2 + 3?")
    program(question="What is 2 + 3?")
    assert lm.engine.calls == 2
