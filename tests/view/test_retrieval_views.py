"""Retrievals and embedding calls where users look: the timeline (HTML, text, terminal),
the waterfall, the trial and experiment summaries, the comparison of two trials, the rows.

One recorded experiment: two evaluations of a RAG program over a corpus that holds a long
passage and text that attacks HTML and terminals, one retrieving 1 passage, one 5.
"""

from __future__ import annotations

import io

import dspy
import pytest
from rich.console import Console

import dspex
from dspex import EventKind
from dspex.capture.recorder import TrialRecorder
from dspex.capture.scoring import usage_of
from dspex.model.rows import trial_rows
from dspex.view.comparison import trials_side_by_side
from dspex.view.comparison_html import comparison_html
from dspex.view.comparison_text import trials_text
from dspex.view.html import trial_html
from dspex.view.retrievals import PASSAGE_CHARS, PASSAGES_SHOWN, abridge, rag_stats
from dspex.view.terminal import timeline_renderables
from dspex.view.text import experiment_text, render_trial_text
from dspex.view.timeline import build_timeline
from dspex.view.waterfall import timeline_waterfall
from tests.capture.rag import CORPUS, RAG, CountingEmbedder, question

from .fixtures import XSS, XSS_TEXT
from .htmltree import parse

LONG = "Fact 99: " + "the sum is long " * 60 + XSS_TEXT  # longer than PASSAGE_CHARS
ESCAPE = "Fact 98: a terminal \x1b]52;c;aGk=\x07 attack and " + XSS[0]


def exact(example, prediction, trace=None) -> bool:
    return example.answer == prediction.answer


@pytest.fixture(scope="module")
def recorded():
    store = dspex.ResultStore.open("memory://")
    corpus = [*CORPUS, LONG, ESCAPE]
    devset = [
        dspy.Example(question=question(i) + " sum long", answer=str(2 * i + 1)).with_inputs(
            "question"
        )
        for i in range(6)
    ]
    with (
        dspy.context(lm=dspex.offline_lm()),
        dspex.experiment("rag views", program_name="rag", store=store) as run,
    ):
        embedder = dspy.Embedder(CountingEmbedder(), caching=False)
        narrow = dspy.retrievers.EmbeddingsWithScores(corpus=corpus, embedder=embedder, k=1)
        broad = dspy.retrievers.EmbeddingsWithScores(corpus=corpus, embedder=embedder, k=5)
        a = run.evaluate(RAG(narrow), devset, exact, name="narrow")
        b = run.evaluate(RAG(broad), devset, exact, name="broad")
    experiment = store.get_experiment(run.id)
    return experiment, experiment.trial(a.id), experiment.trial(b.id)


def test_abridge_cuts_at_a_word_and_says_so():
    assert abridge("short") == ("short", False)
    text, cut = abridge("word " * 100, 40)
    assert cut and len(text) <= 41 and text.endswith(" …") and "wor …" not in text
    assert abridge("a\nb", 10) == ("a b", False)


def test_the_trial_timeline_shows_each_query_and_its_ranked_passages(recorded):
    experiment, _, broad = recorded
    html = str(trial_html(experiment, broad))
    doc = parse(html)
    entries = doc.find_all("details", "kind-retrieval")
    retrievals = {e.id: e for e in broad.events if e.kind is EventKind.RETRIEVAL}
    assert {e.attrs["id"] for e in entries} == set(retrievals) and len(entries) == 6
    for entry in entries:
        event = retrievals[entry.attrs["id"]]
        assert entry.find("q").text() == event.payload["queries"][0]
        shown = entry.find("ol", "passages").find_all("li")
        assert len(shown) == PASSAGES_SHOWN  # the first few open, the rest folded
        folded = entry.find("details", "more-passages")
        assert folded.find("summary").text() == f"{5 - PASSAGES_SHOWN} more passages"
        assert len(folded.find_all("li")) == 5 - PASSAGES_SHOWN
        first = event.payload["results"][0][0]
        assert shown[0].find("span", "score").text() == f"{first['score']:.3f}"
        assert shown[0].find("code", "pid").text() == f"#{first['id']}"
    # the long passage: abridged, its whole text one click away; every attack escaped
    full = doc.find_all("details", "passage-full")
    assert full and all(LONG.startswith(d.find("pre").text()[:50]) for d in full)
    assert all(len(d.find("summary").text()) <= PASSAGE_CHARS + 1 for d in full)
    assert any(d.find("pre").text() == LONG for d in full)
    for attack in (XSS[0], XSS[1], XSS[4]):  # the page has script tags of its own
        assert attack not in html
    for entry in entries:
        assert not entry.find_all("script") and not entry.find_all("img")
    meta = doc.find("header").find("p", "meta").text()
    # the harness's threads search at once: Embeddings embeds their queries in one call
    calls = len([e for e in broad.events if e.kind is EventKind.EMBEDDING])
    assert "retrievals 6 (p50" in meta and f"embeddings {calls} calls, 6 texts" in meta


def test_the_text_and_terminal_timelines_show_passages_safely(recorded):
    experiment, _, broad = recorded
    text = render_trial_text(experiment, broad, abridged=False, max_events=None)
    first = next(e for e in broad.events if e.kind is EventKind.RETRIEVAL)
    top = first.payload["results"][0][0]
    assert f"query: {first.payload['queries'][0]}" in text
    assert f"1. {top['score']:.3f}  #{top['id']}  {top['text'][:30]}" in text  # then wrapped
    assert "Retrieval EmbeddingsWithScores · rag → 5 passages" in text
    assert "\x1b" not in text and "\x07" not in text
    assert "retrievals 6 (p50" in text
    console = Console(file=io.StringIO(), width=120, color_system=None)
    for renderable in timeline_renderables(build_timeline(broad, experiment)):
        console.print(renderable)
    shown = console.file.getvalue()
    assert "query: What is 0 + 1? sum long" in shown and "\x1b]52" not in shown


def test_the_waterfall_draws_retrievals_and_embeddings_inside_their_module(recorded):
    experiment, _, broad = recorded
    rows = timeline_waterfall(build_timeline(broad, experiment)).rows
    labels = [r.label for r in rows]
    assert labels.count("retrieve EmbeddingsWithScores k=5") == 6
    embeddings = [e for e in broad.events if e.kind is EventKind.EMBEDDING]
    assert len([x for x in labels if x.startswith("embed ")]) == len(embeddings) >= 1
    depth = {r.span.event.id: r.depth for r in rows}
    by_id = {e.id: e for e in broad.events}
    for row in rows:
        if row.label.startswith("retrieve"):
            module = by_id[row.span.event.parent_id]
            assert depth[row.span.event.id] == depth[module.id] + 1
            assert row.span.ms > 0


def test_summaries_count_retrievals_and_embedding_calls(recorded):
    experiment, narrow, broad = recorded
    text = experiment_text(experiment)
    stats = rag_stats([e for t in experiment.trials for e in t.events])
    assert stats is not None and stats.retrievals == 12 and stats.index_builds == 2
    assert "retrievals: 12 (p50 " in text
    calls = len([e for t in experiment.trials for e in t.events if e.kind is EventKind.EMBEDDING])
    texts = 2 * (len(CORPUS) + 2) + 12  # two indexes, twelve queries
    assert f"embeddings: {calls} calls, {texts} texts, 2 index builds" in text
    rows = {r["name"]: r for r in trial_rows(experiment)}
    embedded = len([e for e in broad.events if e.kind is EventKind.EMBEDDING])
    assert rows["narrow"]["retrievals"] == 6 and rows["broad"]["embedding_calls"] == embedded


def test_comparing_two_trials_names_the_examples_with_other_passages(recorded):
    experiment, narrow, broad = recorded
    view = trials_side_by_side(experiment, narrow, experiment, broad)
    assert view.retrievals is not None and view.retrievals.compared == 6
    assert len(view.retrievals.differ) == 6  # 1 passage against 5, for every example
    text = trials_text(view)
    assert "B retrieved different passages for 6 of 6 examples: #0, #1" in text
    assert any(line.split()[:1] == ["retrievals"] for line in text.splitlines())
    html = str(comparison_html(view))
    doc = parse(html)
    section = doc.find("section", "dspex-retrievals")
    assert "B retrieved different passages for 6 of 6 examples" in section.text()
    assert len(section.find("table", "retrieval-diff").find_all("tr", **{"data-side": "B"})) == 6
    for attack in XSS:
        assert attack not in html
    same = trials_side_by_side(experiment, broad, experiment, broad)
    assert same.retrievals is not None and same.retrievals.differ == ()
    assert "B retrieved the same passages for all 6 examples" in trials_text(same)


def test_an_examples_cost_includes_what_its_embedding_calls_cost():
    recorder = TrialRecorder("trl_01M91F0000000000000000000A")
    recorder.emit(
        EventKind.EMBEDDING,
        {"model": "m", "embedder": "e", "module": None, "purpose": "call", "retriever": None,
         "inputs": 1, "texts": ["q"], "batch_size": 1, "batches": 1, "cache_hits": 0,
         "dimensions": 3, "usage": {"prompt_tokens": 4}, "cost": 0.25, "latency_ms": 1.0,
         "error": None},
    )  # fmt: skip
    recorder.emit(
        EventKind.LM_CALL,
        {"model": "m", "module": None, "messages": [], "response": ["4"], "settings": {},
         "usage": {"total_tokens": 10}, "cost": 0.5, "cache_hit": False, "latency_ms": 1.0,
         "error": None},
    )  # fmt: skip
    assert usage_of(recorder.raw_events()) == (10, 0.75)
