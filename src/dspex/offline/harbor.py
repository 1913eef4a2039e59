"""The harbor corpus and how the offline LM reads it: the LM's side of the RAG demo.

No DSPy here: :mod:`dspex.offline.skills` asks this module for search queries
(:func:`search_query_for`), answers from retrieved passages (:func:`answer_from_context`)
and, for GEPA's reflection, the mistakes a query module made (:func:`query_mistakes`). The
program, the retriever and the dataset are in :mod:`dspex.offline.rag`.

>>> CORPUS[0]
'Mira Okafor plays the cello in the harbor band.'
>>> search_query_for("Where was Tomas Vell born?")
'born'
>>> search_query_for("Where was Tomas Vell born?", RAG_RULES["query"])
'Tomas Vell born'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CORPUS",
    "RAG_RULES",
    "STOPWORDS",
    "WORD",
    "answer_from_context",
    "harbor_rows",
    "keeps_names",
    "names_in",
    "passages_in",
    "query_mistakes",
    "search_query_for",
]

#: The rule, per mistake kind of the RAG program, that fixes it once in the instructions.
RAG_RULES: dict[str, str] = {
    "query": (
        "Keep every name from the question (people, boats, places) in the search query: "
        "the passages are found by the names they mention."
    ),
}
_KEEPS_NAMES = re.compile(
    r"keep (?:every|each|all|the) names?|(?:include|mention|use) (?:every|each|all|the) names?"
    r"|names? (?:from|in) the question",
    re.I,
)

# -- the corpus ------------------------------------------------------------------------------

# (name, instrument, birthplace, boat, trade)
_PEOPLE = (
    ("Mira Okafor", "cello", "Lagos", "Heron", "sailmaker"),
    ("Tomas Vell", "fiddle", "Antwerp", "Saltwind", "cooper"),
    ("Ines Darrow", "oboe", "Porto", "Kittiwake", "net mender"),
    ("Ruth Calder", "trumpet", "Bergen", "Morning Star", "boatwright"),
    ("Joss Penhallow", "accordion", "Cork", "Little Auk", "rope maker"),
    ("Anya Brisk", "flute", "Gdansk", "Tern", "harbor pilot"),
    ("Leo Fairweather", "drum", "Lisbon", "Curlew", "smith"),
    ("Hana Moreau", "harp", "Nantes", "Grey Seal", "chandler"),
    ("Silas Quill", "tuba", "Hull", "Periwinkle", "diver"),
    ("Nell Ashby", "banjo", "Galway", "Puffin", "lock keeper"),
)
# (who, what they do): one person each
_ROLES = (
    ("Mira Okafor", "keeps the lighthouse on Gull Point"),
    ("Tomas Vell", "runs the bakery on Rope Street"),
    ("Ines Darrow", "rings the chapel bell at noon"),
    ("Ruth Calder", "teaches at the school above the quay"),
    ("Joss Penhallow", "brews cider in the old mill"),
    ("Anya Brisk", "keeps the tide tables in the customs house"),
    ("Leo Fairweather", "paints the boats before the summer fair"),
    ("Hana Moreau", "grows oysters in the north creek"),
    ("Silas Quill", "mends the harbor wall after storms"),
    ("Nell Ashby", "sells maps in the arcade by the ferry"),
)


@dataclass(frozen=True)
class _Relation:
    """A kind of fact: how a passage says it and how a question asks for it."""

    name: str
    passage: str  # "{who} ... {what}"
    question: str  # "... {who} ..."
    finds: re.Pattern[str]  # over a passage: groups who, what


_RELATIONS = (
    _Relation(
        "instrument",
        "{who} plays the {what} in the harbor band.",
        "Which instrument does {who} play?",
        re.compile(r"^(?P<who>.+?) plays the (?P<what>.+?) in the harbor band\.$"),
    ),
    _Relation(
        "birthplace",
        "{who} was born in {what}.",
        "Where was {who} born?",
        re.compile(r"^(?P<who>.+?) was born in (?P<what>.+?)\.$"),
    ),
    _Relation(
        "boat",
        "{who} sails a boat called the {what}.",
        "What is the name of the boat {who} sails?",
        re.compile(r"^(?P<who>.+?) sails a boat called the (?P<what>.+?)\.$"),
    ),
    _Relation(
        "trade",
        "{who} works on the quay as a {what}.",
        "What does {who} work as on the quay?",
        re.compile(r"^(?P<who>.+?) works on the quay as a (?P<what>.+?)\.$"),
    ),
)
_QUESTIONS = [
    (relation, re.compile("^" + re.escape(relation.question).replace(r"\{who\}", "(?P<who>.+?)")
                          + "$"))
    for relation in _RELATIONS
]  # fmt: skip
_WHO = re.compile(r"^Who (?P<role>.+?)\?$")


def _corpus() -> list[str]:
    passages = []
    for who, *facts in _PEOPLE:
        for relation, what in zip(_RELATIONS, facts, strict=True):
            passages.append(relation.passage.format(who=who, what=what))
    passages.extend(f"{who} {role}." for who, role in _ROLES)
    return passages


CORPUS: list[str] = _corpus()
"""The 50 passages, in index order (four facts per person, then the ten jobs)."""


def harbor_rows() -> list[tuple[str, str, str]]:
    """(question, answer, kind) of the 30 questions, train's 18 first, then dev's 12."""
    named = []
    for index, (who, *facts) in enumerate(_PEOPLE):
        for offset, (relation, what) in enumerate(zip(_RELATIONS, facts, strict=True)):
            if (index + offset) % 2 == 0:  # two facts a person: twenty questions
                named.append((relation.question.format(who=who), what, "named"))
    roles = [(f"Who {role}?", who, "role") for who, role in _ROLES]
    # train: 13 named questions and 5 about jobs, mixed (an optimizer that splits it into
    # a training and a validation part finds both kinds in each); dev: 7 and 5
    train = [*named[:2], roles[0], *named[2:4], roles[1], *named[4:6], roles[2],
             *named[6:8], roles[3], *named[8:10], roles[4], *named[10:13]]  # fmt: skip
    return train + named[13:] + roles[5:]


WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an the of in on at to by for as is was does do did what which who where when how "
    "and or with from that this it its be are name called".split()
)


_NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*")
_QUESTION_OPENERS = frozenset({"Which", "Where", "What", "Who", "When", "How"})


def names_in(question: str) -> list[str]:
    """The capitalized names of ``question`` (its first word left out).

    >>> names_in("Which instrument does Mira Okafor play?")
    ['Mira Okafor']
    >>> names_in("Who keeps the lighthouse on Gull Point?")
    ['Gull Point']
    """
    found = []
    for match in _NAME.finditer(question):
        words = match.group(0).split()
        if match.start() == 0 and words[0] in _QUESTION_OPENERS:
            words = words[1:]
        if words:
            found.append(" ".join(words))
    return found


def keeps_names(instructions: str) -> bool:
    """Whether ``instructions`` tell the query writer to keep the question's names."""
    return bool(_KEEPS_NAMES.search(instructions))


def search_query_for(question: str, instructions: str = "") -> str:
    """The search query the offline LM writes for ``question``.

    Without guidance: the question's content words without its names (the topic). With a
    rule that keeps the names (:func:`keeps_names`): the names, then the content words.

    >>> search_query_for("Which instrument does Mira Okafor play?")
    'instrument play'
    >>> search_query_for("Which instrument does Mira Okafor play?", RAG_RULES["query"])
    'Mira Okafor instrument play'
    """
    names = names_in(question)
    rest = question
    for name in names:
        rest = rest.replace(name, " ")
    words = [w for w in WORD.findall(rest.lower()) if w not in STOPWORDS]
    kept = names if keeps_names(instructions) else []
    return " ".join([*kept, *words]) or question


_BLOB = re.compile(r"«(.*?)»", re.S)


def passages_in(context: str) -> list[str]:
    """The passages of a ``context`` field as DSPy's adapters write a list (``[1] «...»``)."""
    found = [p.strip() for p in _BLOB.findall(context)]
    return found or [line.strip() for line in context.splitlines() if line.strip()]


def answer_from_context(question: str, context: str) -> tuple[str, str]:
    """(answer, reasoning): the offline LM reading the passages for ``question``.

    It looks for a passage of the fact the question asks about that names the question's
    person (or, for "Who ...?", that says the job). When none does, it answers from the
    first passage of that kind of fact, a confident answer about someone else: what a
    model does with the wrong passages. With no passage of that kind: "I do not know".
    """
    passages = passages_in(context)
    role = _WHO.match(question.strip())
    if role is not None:
        wanted = role.group("role")
        for index, passage in enumerate(passages, 1):
            if passage.endswith(f" {wanted}."):
                who = passage[: -len(wanted) - 2].strip()
                return who, f"Passage [{index}] says that {who} {wanted}. So the answer is {who}."
        return "I do not know", "No passage says who does this. So the answer is I do not know."
    for relation, pattern in _QUESTIONS:
        asked = pattern.match(question.strip())
        if asked is None:
            continue
        who = asked.group("who")
        facts = [
            (i, found)
            for i, passage in enumerate(passages, 1)
            if (found := relation.finds.match(passage)) is not None
        ]
        for index, fact in facts:
            if fact.group("who") == who:
                what = fact.group("what")
                return (
                    what,
                    f"Passage [{index}] is about {who}: {fact.group(0)} So the answer is {what}.",
                )
        if facts:
            index, fact = facts[0]
            what = fact.group("what")
            return what, (
                f"Passage [{index}] gives the {relation.name}: {fact.group(0)} "
                f"So the answer is {what}."
            )
        return (
            "I do not know",
            f"No passage gives a {relation.name}. So the answer is I do not know.",
        )
    return "I do not know", "I cannot tell what the question asks. So the answer is I do not know."


def query_mistakes(examples: list[dict[str, Any]]) -> list[str]:
    """``["query"]`` when a reflective example (GEPA's ``Inputs``, ``Generated Outputs``,
    ``Feedback``) of the query module shows a wrong answer from a query that left out a
    name of the question; else ``[]``."""
    for example in examples:
        inputs = example.get("Inputs")
        outputs = example.get("Generated Outputs")
        if not isinstance(inputs, dict) or not isinstance(outputs, dict):
            continue
        query = str(outputs.get("search_query", ""))
        if "search_query" not in outputs or not str(example.get("Feedback", "")).startswith(
            "Incorrect"
        ):
            continue
        names = names_in(str(inputs.get("question", "")))
        if any(name.lower() not in query.lower() for name in names):
            return ["query"]
    return []
