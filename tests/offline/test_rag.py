"""The RAG demo: the offline LM writes queries and reads passages, GEPA fixes the queries,
and the record holds every retrieval and embedding call the run made, no more, no fewer.

The embedding function and its counter are written here (``Counting``, around the
corpus's own hashed bag of words); the LM is the offline LM, whose engine counts its
calls.
"""

from __future__ import annotations

import json
import threading

import dspy
import pytest
from click.testing import CliRunner
from rich.console import Console

import dspex
from dspex import EventKind
from dspex.cli import main
from dspex.cli._demo_rag import retrieval_section, run_rag
from dspex.cli._demo_summary import Hints, demo_summary, evaluated_pair
from dspex.offline import offline_lm
from dspex.offline.draws import Draws
from dspex.offline.harbor import (
    CORPUS,
    RAG_RULES,
    answer_from_context,
    names_in,
    query_mistakes,
    search_query_for,
)
from dspex.offline.instructions import reflect
from dspex.offline.prompt import Prompt
from dspex.offline.rag import (
    HarborRAG,
    embed,
    harbor_retriever,
    load_harbor,
    rag_match,
    rag_match_with_feedback,
)
from dspex.view.retrievals import retrieval_diff


class Counting:
    """An embedding function that counts its calls and the texts it embedded."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]):
        with self._lock:
            self.calls += 1
            self.texts += len(texts)
        return embed(texts)


def _with_rule(program: HarborRAG) -> HarborRAG:
    predictor = program.generate_query
    predictor.signature = predictor.signature.with_instructions(RAG_RULES["query"])
    return program


# -- the offline LM's side -----------------------------------------------------------------


def test_queries_leave_out_the_names_until_a_rule_keeps_them():
    question = "What is the name of the boat Anya Brisk sails?"
    assert names_in(question) == ["Anya Brisk"]
    assert search_query_for(question) == "boat sails"
    kept = search_query_for(question, "Answer. Include every name from the question.")
    assert kept == "Anya Brisk boat sails"
    assert search_query_for(question, "Answer briefly.") == "boat sails"


def test_answers_come_from_the_passage_about_the_person_else_from_someone_elses():
    question = "Where was Ruth Calder born?"
    right = (
        "[1] «Ruth Calder sails a boat called the Morning Star.»\n"
        "[2] «Ruth Calder was born in Bergen.»"
    )
    wrong = "[1] «Mira Okafor was born in Lagos.»\n[2] «Tomas Vell was born in Antwerp.»"
    assert answer_from_context(question, right)[0] == "Bergen"
    assert answer_from_context(question, wrong)[0] == "Lagos"  # confidently wrong
    assert answer_from_context(question, "«Nell Ashby plays the banjo in the harbor band.»")[0] == (
        "I do not know"
    )
    role = "Who grows oysters in the north creek?"
    assert answer_from_context(role, "«Hana Moreau grows oysters in the north creek.»")[0] == (
        "Hana Moreau"
    )


def test_the_program_scores_what_its_queries_find():
    train, dev = load_harbor()
    assert len(CORPUS) == 50 and (len(train), len(dev)) == (18, 12)
    assert {ex.kind for ex in train} == {ex.kind for ex in dev} == {"named", "role"}
    lm = offline_lm()
    with dspy.context(lm=lm):
        plain = [rag_match(ex, HarborRAG()(question=ex.question)) for ex in dev]
        ruled = [rag_match(ex, _with_rule(HarborRAG())(question=ex.question)) for ex in dev]
    assert sum(plain) == 5 and sum(ruled) == 12
    # the questions about jobs name no person: right with or without the rule
    assert all(score == 1.0 for score, ex in zip(plain, dev, strict=True) if ex.kind == "role")


def test_reflection_proposes_the_query_rule_from_the_retrieval_feedback():
    question = "Where was Hana Moreau born?"
    with dspy.context(lm=offline_lm()):
        pred = HarborRAG()(question=question)
    gold = dspy.Example(question=question, answer="Nantes")
    feedback = rag_match_with_feedback(gold, pred)
    assert feedback.score == 0.0
    assert "none of the 3 passages retrieved for the search query 'born'" in feedback.feedback
    example = {
        "Inputs": {"question": question},
        "Generated Outputs": {"search_query": pred.search_query},
        "Feedback": feedback.feedback,
    }
    assert query_mistakes([example]) == ["query"]
    current = "Given the fields `question`, produce the fields `search_query`."
    inputs = {"current_instruction": current, "examples_with_feedback": json.dumps([example])}
    proposals = {
        reflect(Prompt(inputs=inputs), Draws(f"seed {i}".encode(), 0.0))["new_instruction"]
        for i in range(20)
    }
    assert current + " " + RAG_RULES["query"] in proposals
    # an answer that matched shows no query mistake
    example["Feedback"] = "Correct: the response 'Nantes' matches the expected answer."
    assert query_mistakes([example]) == []


# -- the demo, recorded ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run():  # about 10 s: tests using it are marked slow
    """One run of the demo into a memory store, with counted embedder and LM calls."""
    embedder = Counting()
    lm = offline_lm()
    store = dspex.ResultStore.open("memory://rag-demo")
    run = run_rag(store, Console(stderr=True), embedder=embedder, lm=lm)
    return store.get_experiment(run.id), embedder, lm


def _events(experiment, kind):
    return [e for t in experiment.trials for e in t.events if e.kind is kind]


@pytest.mark.slow
def test_the_recorded_retrievals_and_embedding_calls_equal_the_real_calls(demo_run):
    experiment, embedder, lm = demo_run
    retrievals = _events(experiment, EventKind.RETRIEVAL)
    embeddings = _events(experiment, EventKind.EMBEDDING)
    assert len(embeddings) == embedder.calls
    index = [e for e in embeddings if e.payload["purpose"] == "index"]
    assert len(index) == 1 and index[0].payload["inputs"] == len(CORPUS)
    # each retrieval embeds its one query; concurrent ones share an embedder call
    assert len(retrievals) == embedder.texts - len(CORPUS)
    queries = [e for e in embeddings if e.payload["purpose"] == "query"]
    assert sum(e.payload["callers"] for e in queries) == len(retrievals)
    assert len(_events(experiment, EventKind.LM_CALL)) == lm.engine.calls
    for retrieval in retrievals:
        (passages,) = retrieval.payload["results"]
        assert [CORPUS[p["id"]] for p in passages] == [p["text"] for p in passages]
        assert retrieval.payload["module"] == "rag" and retrieval.payload["k"] == 3


@pytest.mark.slow
def test_the_optimized_program_retrieves_other_passages_and_scores_higher(demo_run):
    experiment, _, _ = demo_run
    baseline, optimized = evaluated_pair(experiment)
    assert baseline.score == pytest.approx(5 / 12) and optimized.score == 1.0
    diff = retrieval_diff(baseline, optimized)
    assert diff is not None and diff.compared == 12 and len(diff.differ) == 7
    scores = {}
    for trial in (baseline, optimized):
        for event in trial.events:
            if event.kind is EventKind.EXAMPLE_RESULT:
                scores[trial.id, event.payload["example"]] = event.payload["value"]
    for before, after in diff.differ:  # every changed retrieval turned a miss into a hit
        assert scores[baseline.id, before.index] == 0.0
        assert scores[optimized.id, after.index] == 1.0
        assert before.queries != after.queries
    # the decision that did it: the query module's instruction gained the rule
    created = [
        e.payload for e in _events(experiment, EventKind.CANDIDATE_CREATED) if e.payload["changes"]
    ]
    assert any(
        RAG_RULES["query"] in json.dumps(c["changes"]) and "generate_query" in json.dumps(c)
        for c in created
    )


@pytest.mark.slow
def test_the_summary_shows_the_changed_retrievals_on_one_screen(demo_run):
    experiment, _, _ = demo_run
    text = demo_summary(experiment, hints=Hints("sqlite:///runs.db"), width=100)
    assert "How GEPA built it" in text and "rag.generate_query.instructions" in text
    assert "retrieved different passages for 7 of 12 examples" in text
    assert "baseline   query 'boat sails'" in text
    assert "optimized  query 'Leo Fairweather boat sails'" in text
    assert "dspex compare" in text and "--trial" in text
    assert len(text.splitlines()) <= 45
    assert all(len(line) <= 100 for line in text.splitlines() if "dspex " not in line)
    # nothing retrieved: no section
    baseline, _ = evaluated_pair(experiment)
    assert retrieval_section(None, baseline, 100) == []


@pytest.mark.slow
def test_dspex_demo_rag_runs_from_the_command_line():
    result = CliRunner().invoke(main, ["demo", "--rag", "--store", "memory://cli-rag"])
    assert result.exit_code == 0, result.output
    assert "demo: GEPA on offline RAG" in result.output
    assert "the optimized program retrieved different passages for 7 of 12" in result.output
    refused = CliRunner().invoke(main, ["demo", "--rag", "--study"])
    assert refused.exit_code == 2 and "--rag and --study" in refused.output


def test_copies_of_the_program_share_one_retriever_built_at_the_first_search():
    retriever = harbor_retriever()
    program = HarborRAG(retriever)
    twin = program.deepcopy()
    assert twin.retriever is retriever and twin.generate_query is not program.generate_query
    embedder = Counting()
    lazy = HarborRAG(embedder=embedder)
    copies = [lazy.deepcopy(), lazy.deepcopy()]
    assert embedder.calls == 0  # nothing built yet
    assert copies[0].retriever is copies[1].retriever is lazy.retriever
    assert embedder.calls == 1 and embedder.texts == len(CORPUS)  # one index, once
