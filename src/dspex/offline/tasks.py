"""The task solver behind the offline LM: arithmetic, word problems, capital cities.

It solves every question it can parse, and errs in three systematic ways that a
rule in the instructions or a demo of the same kind fixes:

========== ============================== ============================================
kind       mistake without guidance       fixed by
========== ============================== ============================================
borrow     subtracts column by column      a rule that mentions borrowing, or a demo of
           without borrowing (52 - 17     a borrowing subtraction with the right answer
           gives 45)
word       keeps the unit ("18 apples")   a rule asking for digits only / no units, or a
                                          demo of a word problem answered with a number
capital    answers a whole sentence       a rule asking for the name only, or a demo of
           ("The capital of Peru is       a capital question answered with the name
           Lima.")
arith      none (sums, products and subtractions without borrowing are right)
========== ============================== ============================================

>>> plain = Guidance()
>>> solve("What is 52 - 17?", plain).answer
'45'
>>> solve("What is 52 - 17?", Guidance(instructions="Borrow from the next column.")).answer
'35'
>>> solve("What is the capital of Peru?", plain).answer
'The capital of Peru is Lima.'
>>> solve("What is 6 * 7 + 1?", plain).answer
'43'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "CAPITALS",
    "RULES",
    "Guidance",
    "Noise",
    "ParsedQuestion",
    "Solution",
    "classify",
    "diagnose",
    "fixed_by_rule",
    "solve",
]

#: The rule text, per mistake kind, that fixes the kind once it is in the instructions.
#: OfferFeedback advice and instruction proposals quote these.
RULES: dict[str, str] = {
    "borrow": (
        "If the question subtracts and a digit of the second number is larger than the digit "
        "above it, borrow from the next column (52 - 17 = 35, not 45)."
    ),
    "word": (
        "If the question is a word problem, answer with digits only: the bare number, "
        "without units or extra words."
    ),
    "capital": (
        "If the question asks for a capital city, answer with the city name only, not a full "
        "sentence."
    ),
}

# What an instruction must say for the model to follow the fix. The canonical RULES
# match these, and so do the usual ways a person would phrase the same advice.
_RULE_PATTERNS: dict[str, re.Pattern[str]] = {
    "borrow": re.compile(r"\bborrow", re.I),
    "word": re.compile(
        r"digits only|only digits|number only|only the number|bare number|without units|no units",
        re.I,
    ),
    "capital": re.compile(
        r"name only|only the (?:city )?name|just the (?:city )?name|not a full sentence", re.I
    ),
}

CAPITALS: dict[str, str] = {
    "Argentina": "Buenos Aires",
    "Australia": "Canberra",
    "Austria": "Vienna",
    "Brazil": "Brasilia",
    "Canada": "Ottawa",
    "Chile": "Santiago",
    "Egypt": "Cairo",
    "Finland": "Helsinki",
    "France": "Paris",
    "Germany": "Berlin",
    "Ghana": "Accra",
    "Greece": "Athens",
    "India": "New Delhi",
    "Ireland": "Dublin",
    "Italy": "Rome",
    "Japan": "Tokyo",
    "Kenya": "Nairobi",
    "Mexico": "Mexico City",
    "Morocco": "Rabat",
    "Nepal": "Kathmandu",
    "Norway": "Oslo",
    "Peru": "Lima",
    "Poland": "Warsaw",
    "Portugal": "Lisbon",
    "Spain": "Madrid",
    "Sweden": "Stockholm",
    "Thailand": "Bangkok",
    "Turkey": "Ankara",
    "Vietnam": "Hanoi",
}

_WORDS_TO_OPS = (
    (re.compile(r"\bmultiplied by\b"), "*"),
    (re.compile(r"\btimes\b"), "*"),
    (re.compile(r"\bplus\b"), "+"),
    (re.compile(r"\bminus\b"), "-"),
    (re.compile(r"(?<=\d)\s*[x×]\s*(?=\d)"), " * "),
)
_EXPRESSION = re.compile(r"^\s*what is\s+([\d\s+*-]+?)\s*\??\s*$", re.I)
_TOKEN = re.compile(r"\d+|[+*-]")
_CAPITAL = re.compile(r"capital (?:city )?of ([A-Z][A-Za-z .'-]*?)\s*\??\s*$")
_HOW_MANY = re.compile(r"how many ([a-z]+)", re.I)
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Guidance:
    """What the prompt offers beyond the question: instructions and demos (question, answer)."""

    instructions: str = ""
    demos: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class Noise:
    """Sampling noise for one call: ``slip`` spoils a right answer, ``lucky`` fixes a mistake.

    Both are False at temperature 0, so that temperature 0 is fully determined.
    """

    slip: bool = False
    lucky: bool = False


@dataclass(frozen=True)
class ParsedQuestion:
    """A parsed question: its ``kind``, the right ``answer`` and how to explain it."""

    kind: str  # "arith", "borrow", "word", "capital" or "unknown"
    answer: str
    steps: tuple[str, ...] = ()
    wrong: str = ""  # the systematic mistake, "" when the kind has none
    wrong_steps: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Solution:
    """What the model answers, why, and which guidance (``"rule"``, ``"demo"``) fixed it."""

    answer: str
    reasoning: str
    kind: str
    fixed_by: str | None = None


def _needs_borrow(a: int, b: int) -> bool:
    while b:
        if a % 10 < b % 10:
            return True
        a, b = a // 10, b // 10
    return False


def _subtract_without_borrowing(a: int, b: int) -> int:
    """The classic mistake: in every column, the smaller digit from the larger one."""
    digits, place = 0, 1
    while a or b:
        digits += abs(a % 10 - b % 10) * place
        a, b, place = a // 10, b // 10, place * 10
    return digits


def _evaluate(tokens: list[str], borrow: bool) -> tuple[int, list[str]]:
    """Products first, then sums and differences left to right, with the steps taken."""
    steps: list[str] = []
    terms: list[int | str] = []
    for token in tokens:
        if terms and terms[-1] == "*" and token.isdigit():
            terms.pop()
            left = int(terms.pop())
            terms.append(left * int(token))
            steps.append(f"{left} * {token} = {left * int(token)}")
        else:
            terms.append(int(token) if token.isdigit() else token)
    total = int(terms[0])
    for op, value in zip(terms[1::2], terms[2::2], strict=True):
        right = int(value)
        if op == "+":
            result = total + right
        elif borrow or total < right or not _needs_borrow(total, right):
            result = total - right
        else:
            result = _subtract_without_borrowing(total, right)
        steps.append(f"{total} {op} {right} = {result}")
        total = result
    return total, steps


def _parse_expression(question: str) -> list[str] | None:
    text = question.lower()
    for pattern, symbol in _WORDS_TO_OPS:
        text = pattern.sub(f" {symbol} ", text)
    match = _EXPRESSION.match(text)
    if not match:
        return None
    tokens = _TOKEN.findall(match.group(1))
    shape_ok = len(tokens) % 2 == 1 and all(
        t.isdigit() == (i % 2 == 0) for i, t in enumerate(tokens)
    )
    return tokens if shape_ok else None


def _arithmetic(tokens: list[str]) -> ParsedQuestion:
    right, steps = _evaluate(tokens, borrow=True)
    wrong, wrong_steps = _evaluate(tokens, borrow=False)
    if wrong == right:
        return ParsedQuestion("arith", str(right), tuple(steps))
    return ParsedQuestion("borrow", str(right), tuple(steps), str(wrong), tuple(wrong_steps))


def _word_problem(question: str) -> ParsedQuestion | None:
    unit = _HOW_MANY.search(question)
    numbers = [int(n) for n in _NUMBER.findall(question)]
    if unit is None or len(numbers) < 2:
        return None
    text = question.lower()
    a, b = numbers[0], numbers[1]
    steps: tuple[str, ...]
    if re.search(r"\b(?:packs|boxes|bags|rows|crates) of\b", text) and len(numbers) >= 3:
        value = a * b + numbers[2]
        steps = (f"{a} * {b} = {a * b}", f"{a * b} + {numbers[2]} = {value}")
    elif re.search(r"\b(?:holds|each|per)\b", text):
        value, steps = a * b, (f"{a} * {b} = {a * b}",)
    elif re.search(r"\b(?:gave away|gives away|ate|eats|lost|loses|sold|sells)\b", text):
        value, steps = a - b, (f"{a} - {b} = {a - b}",)
    elif re.search(r"\bmore\b", text):
        value, steps = a + b, (f"{a} + {b} = {a + b}",)
    else:
        return None
    item = unit.group(1).lower()
    return ParsedQuestion("word", str(value), steps, f"{value} {item}", steps)


def classify(question: str) -> ParsedQuestion:
    """Parse a question into a :class:`ParsedQuestion` (``kind == "unknown"`` when it cannot).

    >>> classify("What is 40 - 13?").kind, classify("What is 40 - 13?").wrong
    ('borrow', '33')
    >>> classify("Ann has 4 bags with 6 apples each. How many apples does Ann have?").wrong
    '24 apples'
    """
    question = question.strip()
    capital = _CAPITAL.search(question)
    if capital:
        country = capital.group(1).strip()
        city = CAPITALS.get(country)
        if city is None:
            return ParsedQuestion("unknown", "I do not know.", (f"{country} is not in my table.",))
        step = f"The capital of {country} is {city}."
        return ParsedQuestion("capital", city, (step,), step, (step,))
    tokens = _parse_expression(question)
    if tokens is not None:
        return _arithmetic(tokens)
    word = _word_problem(question)
    if word is not None:
        return word
    return ParsedQuestion("unknown", "I do not know.", ("I cannot parse this question.",))


def diagnose(question: str, expected: str, answer: str) -> str | None:
    """The mistake kind ``answer`` shows for ``question`` (or None when it shows none we know).

    >>> diagnose("What is 52 - 17?", "35", "45")
    'borrow'
    >>> diagnose("What is the capital of Peru?", "Lima", "The capital of Peru is Lima.")
    'capital'
    """
    problem = classify(question)
    if problem.wrong and answer.strip() == problem.wrong:
        return problem.kind
    if expected.isdigit() and answer != expected and expected in answer.split():
        return "word"
    contains_name = expected.lower() in answer.lower()
    if expected and not expected.isdigit() and contains_name and answer != expected:
        return "capital"
    return None


def fixed_by_rule(kind: str, instructions: str) -> bool:
    """Whether ``instructions`` carry a rule that fixes mistakes of ``kind``."""
    pattern = _RULE_PATTERNS.get(kind)
    return bool(pattern and pattern.search(instructions))


def _demo_shows_fix(problem: ParsedQuestion, question: str, answer: str) -> bool:
    demo = classify(question)
    if demo.kind != problem.kind or question.strip() == "":
        return False
    if problem.kind == "word":
        return answer.strip().isdigit()
    return answer.strip().lower() == demo.answer.lower()


def _fix(problem: ParsedQuestion, guidance: Guidance) -> str | None:
    if not problem.wrong:
        return None
    if fixed_by_rule(problem.kind, guidance.instructions):
        return "rule"
    if any(_demo_shows_fix(problem, q, a) for q, a in guidance.demos):
        return "demo"
    return None


def _slipped(problem: ParsedQuestion) -> str:
    if problem.kind == "capital":
        return problem.wrong
    if problem.answer.lstrip("-").isdigit():
        return str(int(problem.answer) + 1)
    return problem.answer


def solve(question: str, guidance: Guidance, noise: Noise = Noise()) -> Solution:
    """Answer ``question`` the way the model would, given ``guidance`` and ``noise``."""
    problem = classify(question)
    fixed_by = _fix(problem, guidance)
    if problem.wrong and fixed_by is None and noise.lucky:
        fixed_by = "luck"
    if problem.wrong and fixed_by is None:
        return Solution(problem.wrong, _explain(problem.wrong_steps, problem.wrong), problem.kind)
    answer = _slipped(problem) if noise.slip else problem.answer
    reasoning = _explain(problem.steps, answer, fixed_by)
    return Solution(answer, reasoning, problem.kind, fixed_by)


def _explain(steps: Sequence[str], answer: str, fixed_by: str | None = None) -> str:
    lead = {
        "rule": "Following the rule in my instructions: ",
        "demo": "Following the worked example: ",
    }.get(fixed_by or "", "")
    body = "; ".join(step.rstrip(".") for step in steps)
    end = "" if answer.endswith(".") else "."
    return f"{lead}{body}. So the answer is {answer}{end}"
