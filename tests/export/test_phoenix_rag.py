"""A RAG experiment exported to a real Phoenix: RETRIEVER spans with their documents, and
EMBEDDING spans, read back with Phoenix's own client."""

from __future__ import annotations

import json

import dspy
import pytest
from click.testing import CliRunner

import dspex
from dspex.cli import main
from dspex.export.spans import span_id_of, trace_id_of
from tests.capture.rag import CORPUS, RAG, CountingEmbedder, question

from .conftest import phoenix_spans
from .expect import expected_parent, expected_span_count, span_events

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROJECT = "rag-export"


def exact(example, prediction, trace=None) -> bool:
    return example.answer == prediction.answer


@pytest.fixture(scope="module")
def exported(tmp_path_factory, phoenix):
    url = "file://" + str(tmp_path_factory.mktemp("rag-store"))
    store = dspex.ResultStore.open(url).connect()
    devset = [
        dspy.Example(question=question(i), answer=str(2 * i + 1)).with_inputs("question")
        for i in range(6)
    ]
    with (
        dspy.context(lm=dspex.offline_lm()),
        dspex.experiment("rag export", program_name="rag", store=store) as run,
    ):
        search = dspy.retrievers.EmbeddingsWithScores(
            corpus=CORPUS, embedder=dspy.Embedder(CountingEmbedder(), caching=False), k=3
        )
        run.evaluate(RAG(search), devset, exact, name="rag evaluation")
    experiment = store.get_experiment(run.id)
    result = CliRunner().invoke(
        main, ["export", experiment.id, "--otlp", phoenix.url, "--project", PROJECT,
               "--store", url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return experiment, phoenix_spans(phoenix, PROJECT, experiment)


def by_event(spans):
    return {s["attributes"]["dspex.event_id"]: s for s in spans if s.get("parent_id")}


def test_every_retrieval_and_embedding_call_is_a_span_nested_as_recorded(exported):
    experiment, spans = exported
    assert len(spans) == sum(expected_span_count(t) for t in experiment.trials)
    found = by_event(spans)
    kinds = {s["span_kind"] for s in spans}
    assert {"RETRIEVER", "EMBEDDING", "CHAIN", "LLM", "EVALUATOR"} <= kinds
    for trial in experiment.trials:
        root = f"{span_id_of(trial.id):016x}"
        for event in span_events(trial):
            span = found[event.id]
            assert span["context"]["trace_id"] == f"{trace_id_of(trial.id):032x}"
            parent = expected_parent(trial, event)
            want = root if parent is None else found[parent]["context"]["span_id"]
            assert span["parent_id"] == want, (trial.name, event.kind)
    retrievals = [e for t in experiment.trials for e in t.events if e.kind == "retrieval"]
    assert len([s for s in spans if s["span_kind"] == "RETRIEVER"]) == len(retrievals) == 6


def test_a_retriever_span_lists_its_documents_with_ids_and_scores(exported):
    experiment, spans = exported
    found = by_event(spans)
    retrievals = [e for t in experiment.trials for e in t.events if e.kind == "retrieval"]
    for event in retrievals:
        attributes = found[event.id]["attributes"]
        assert attributes["input.value"] == event.payload["queries"][0]
        (passages,) = event.payload["results"]
        for i, passage in enumerate(passages):
            prefix = f"retrieval.documents.{i}.document."
            assert attributes[prefix + "content"] == passage["text"]
            assert attributes[prefix + "id"] == str(passage["id"])
            assert attributes[prefix + "score"] == pytest.approx(passage["score"])
        assert f"retrieval.documents.{len(passages)}.document.content" not in attributes
        assert json.loads(attributes["dspex.settings"])["corpus_size"] == len(CORPUS)


def test_an_embedding_span_names_its_model_and_texts(exported):
    experiment, spans = exported
    found = by_event(spans)
    calls = [e for t in experiment.trials for e in t.events if e.kind == "embedding"]
    assert {c.payload["purpose"] for c in calls} == {"index", "query"}
    for call in calls:
        span = found[call.id]
        assert span["span_kind"] == "EMBEDDING"
        attributes = span["attributes"]
        assert attributes["embedding.model_name"] == call.payload["model"]
        for i, text in enumerate(call.payload["texts"]):
            assert attributes[f"embedding.embeddings.{i}.embedding.text"] == text
        assert attributes["dspex.inputs"] == call.payload["inputs"]
