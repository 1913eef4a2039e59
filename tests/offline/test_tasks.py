"""The solver answers right where it can, and errs systematically where it should."""

from __future__ import annotations

import pytest

from dspex.offline.tasks import RULES, Guidance, Noise, classify, fixed_by_rule, solve

PLAIN = Guidance()


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is 17 + 25?", "42"),
        ("What is 9 * 7?", "63"),
        ("What is 12 times 4?", "48"),
        ("What is 58 - 17?", "41"),
        ("What is 85 * 7 + 8?", "603"),
        ("What is 6 plus 7?", "13"),
    ],
)
def test_arithmetic_without_traps_is_right_without_guidance(question, answer):
    solution = solve(question, PLAIN)
    assert (solution.answer, solution.kind, solution.fixed_by) == (answer, "arith", None)


@pytest.mark.parametrize(
    ("question", "wrong", "right", "kind"),
    [
        ("What is 52 - 17?", "45", "35", "borrow"),
        ("What is 40 minus 13?", "33", "27", "borrow"),
        ("What is 8 * 4 - 25?", "13", "7", "borrow"),
        (
            "Ann has 3 bags with 6 apples each. How many apples does Ann have?",
            "18 apples",
            "18",
            "word",
        ),
        (
            "Lea buys 7 packs of 9 eggs and 5 more eggs. How many eggs does Lea have?",
            "68 eggs",
            "68",
            "word",
        ),
        (
            "Ivo has 19 cookies and buys 6 more. How many cookies does Ivo have now?",
            "25 cookies",
            "25",
            "word",
        ),
        ("What is the capital of Peru?", "The capital of Peru is Lima.", "Lima", "capital"),
    ],
)
def test_each_trap_is_wrong_without_guidance_and_fixed_by_its_rule(question, wrong, right, kind):
    assert solve(question, PLAIN).answer == wrong
    fixed = solve(question, Guidance(instructions="Be careful.\n\n" + RULES[kind]))
    assert (fixed.answer, fixed.fixed_by) == (right, "rule")


@pytest.mark.parametrize(
    ("question", "demo", "right"),
    [
        ("What is 52 - 17?", ("What is 71 - 22?", "49"), "35"),
        (
            "Ann has 3 bags with 6 apples each. How many apples does Ann have?",
            ("Kai has 2 bags with 10 stickers each. How many stickers does Kai have?", "20"),
            "18",
        ),
        ("What is the capital of Peru?", ("What is the capital of Norway?", "Oslo"), "Lima"),
    ],
)
def test_a_demo_of_the_same_kind_fixes_the_trap(question, demo, right):
    solution = solve(question, Guidance(demos=[demo]))
    assert (solution.answer, solution.fixed_by) == (right, "demo")


def test_demos_that_show_the_mistake_or_another_kind_do_not_fix():
    question = "What is 52 - 17?"
    assert solve(question, Guidance(demos=[("What is 71 - 22?", "59")])).answer == "45"
    assert solve(question, Guidance(demos=[("What is 17 + 25?", "42")])).answer == "45"


def test_a_rule_for_another_kind_does_not_fix():
    assert solve("What is 52 - 17?", Guidance(instructions=RULES["capital"])).answer == "45"


def test_the_usual_phrasings_of_the_rules_are_understood():
    assert fixed_by_rule("word", "Respond with the number only.")
    assert fixed_by_rule("capital", "Give just the city name.")
    assert fixed_by_rule("borrow", "Remember to borrow when a column is short.")
    assert not fixed_by_rule("word", "Answer the question.")


def test_noise_slips_and_luck():
    assert solve("What is 17 + 25?", PLAIN, Noise(slip=True)).answer == "43"
    lucky = solve("What is 52 - 17?", PLAIN, Noise(lucky=True))
    assert (lucky.answer, lucky.fixed_by) == ("35", "luck")


def test_unknown_questions_are_admitted():
    assert classify("Who wrote Hamlet?").kind == "unknown"
    assert solve("What is the capital of Atlantis?", PLAIN).answer == "I do not know."


def test_reasoning_explains_the_steps_and_the_fix():
    solution = solve("What is 52 - 17?", Guidance(instructions=RULES["borrow"]))
    assert solution.reasoning == (
        "Following the rule in my instructions: 52 - 17 = 35. So the answer is 35."
    )
