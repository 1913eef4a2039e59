"""Retrievals and embedding calls are recorded as the calls they are, wherever they run.

The embedder is written here (``rag.CountingEmbedder``, a hashed bag of words that counts
its calls); each test compares the ``retrieval`` and ``embedding`` events of the sealed
experiment with the calls counted by the embedder and the program: equal, never more,
never fewer, in direct calls, DSPy's threads, asyncio tasks and every worker pool.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import uuid
from urllib.parse import parse_qs, urlparse

import dspy
import numpy as np
import pytest

import dspex
from dspex import EventKind
from dspex.capture import instrument

from .conftest import exact
from .rag import CORPUS, RAG, CountingEmbedder, Searcher, calls_in, embed, question


def events(experiment: dspex.Experiment, kind: EventKind) -> list[dspex.TraceEvent]:
    return [e for t in experiment.trials for e in t.events if e.kind is kind]


def by_id(experiment: dspex.Experiment) -> dict[str, dspex.TraceEvent]:
    return {e.id: e for t in experiment.trials for e in t.events}


def embeddings(corpus=CORPUS, embedder=None, k=3, scores=False):
    cls = dspy.retrievers.EmbeddingsWithScores if scores else dspy.retrievers.Embeddings
    embedder = embedder or CountingEmbedder()
    return cls(corpus=corpus, embedder=dspy.Embedder(embedder, caching=False), k=k), embedder


def test_direct_calls_record_one_retrieval_per_search_and_one_embedding_per_embedder_call(
    lm, engine, store
):
    with dspex.experiment("rag", store=store) as run:
        search, embedder = embeddings()
        program = RAG(search)
        answers = [program(question=question(i)).answer for i in range(8)]
    experiment = store.get_experiment(run.id)
    assert answers == [str(2 * i + 1) for i in range(8)]
    retrievals = events(experiment, EventKind.RETRIEVAL)
    found = events(experiment, EventKind.EMBEDDING)
    assert len(retrievals) == program.searches == 8
    assert len(found) == embedder.calls == 9  # the index, then one per query
    (index,) = [e for e in found if e.payload["purpose"] == "index"]
    assert index.payload["inputs"] == len(CORPUS) and index.payload["texts"] == []
    assert index.payload["retriever"] == "dspy.retrievers.embeddings.Embeddings"
    assert index.payload["dimensions"] == 64 and index.payload["latency_ms"] > 0
    events_by_id = by_id(experiment)
    for retrieval, asked in zip(retrievals, range(8), strict=True):
        p = retrieval.payload
        assert p["queries"] == [question(asked)] and p["k"] == 3 and p["module"] == "rag"
        assert p["settings"]["corpus_size"] == len(CORPUS)
        (passages,) = p["results"]
        assert len(passages) == 3
        assert all(CORPUS[x["id"]] == x["text"] for x in passages)
        scores = [x["score"] for x in passages]
        assert scores == sorted(scores, reverse=True) and all(isinstance(s, float) for s in scores)
        parent = events_by_id[retrieval.parent_id]
        assert parent.kind is EventKind.MODULE_START and parent.payload["module"] == "rag"
        assert p["latency_ms"] > 0 and p["error"] is None
    for query in (e for e in found if e.payload["purpose"] == "query"):
        owner = events_by_id[query.parent_id]
        assert owner.kind is EventKind.RETRIEVAL and query.payload["module"] == "rag"
        assert query.payload["texts"] == owner.payload["queries"]
        assert query.payload["batches"] == 1 and query.payload["cache_hits"] == 0
    assert len(events(experiment, EventKind.LM_CALL)) == engine.calls == 8


def test_threads_share_embedder_calls_and_each_one_is_recorded_once(lm, engine, store):
    examples = [dspy.Example(question=question(i)).with_inputs("question") for i in range(24)]
    with dspex.experiment("threads", store=store) as run:
        search, embedder = embeddings(scores=True)
        program = RAG(search)
        program.batch(examples, num_threads=6)
        dspy.Parallel(num_threads=6)([(program, ex) for ex in examples[:12]])
    experiment = store.get_experiment(run.id)
    retrievals = events(experiment, EventKind.RETRIEVAL)
    queries = [
        e for e in events(experiment, EventKind.EMBEDDING) if e.payload["purpose"] == "query"
    ]
    assert len(retrievals) == program.searches == 36
    # Embeddings batches the queries of concurrent callers into one embedder call: each
    # call is recorded once, under one of the retrievals it served
    assert len(queries) == embedder.calls - 1
    assert sum(q.payload["callers"] for q in queries) == 36
    assert sum(q.payload["inputs"] for q in queries) == embedder.texts - len(CORPUS)
    events_by_id = by_id(experiment)
    for retrieval in retrievals:
        assert retrieval.payload["batched"] >= 1
        parent = events_by_id[retrieval.parent_id]
        assert parent.worker == retrieval.worker and parent.payload["module"] == "rag"
    assert len({r.worker for r in retrievals}) > 1


def test_dspy_evaluate_records_retrievals_in_the_evaluation_trial(lm, engine, store):
    devset = [dspy.Example(question=question(i), answer=str(2 * i + 1)).with_inputs("question")
              for i in range(12)]  # fmt: skip
    with dspex.experiment("evaluate", store=store) as run:
        search, embedder = embeddings()
        program = RAG(search)
        dspy.Evaluate(devset=devset, metric=exact, num_threads=4, display_progress=False)(program)
    experiment = store.get_experiment(run.id)
    evaluation = next(t for t in experiment.trials if t.metadata.get("role") == "evaluation")
    assert evaluation.score == 1.0
    assert len([e for e in evaluation.events if e.kind is EventKind.RETRIEVAL]) == 12
    queries = [e for e in evaluation.events if e.kind is EventKind.EMBEDDING]
    assert len(queries) + 1 == embedder.calls  # and the index, built in the block
    assert sum(q.payload["callers"] for q in queries) == 12


def test_asyncio_tasks_record_their_own_retrievals_and_embedder_calls(store):
    embedder = CountingEmbedder()
    matrix = embed(CORPUS)

    @dspex.retriever
    async def search(query: str, k: int = 2) -> list[dict]:
        await asyncio.sleep(0.001)
        vector = (await dspy.Embedder(embedder, caching=False).acall([query]))[0]
        scores = matrix @ vector
        top = [int(i) for i in np.argsort(-scores)[:k]]
        return [{"id": i, "text": CORPUS[i], "score": float(scores[i])} for i in top]

    class AsyncRAG(dspy.Module):
        async def aforward(self, question: str) -> dspy.Prediction:
            return dspy.Prediction(passages=await search(question))

    program = AsyncRAG()

    async def main() -> None:
        await asyncio.gather(*(program.acall(question=question(i)) for i in range(20)))

    with dspex.experiment("async", program=program, store=store) as run:
        asyncio.run(main())
    experiment = store.get_experiment(run.id)
    retrievals = events(experiment, EventKind.RETRIEVAL)
    calls = events(experiment, EventKind.EMBEDDING)
    assert len(retrievals) == 20 and len(calls) == embedder.calls == 20
    events_by_id = by_id(experiment)
    for call in calls:  # each embedder call sits in the retrieval of its own task
        owner = events_by_id[call.parent_id]
        assert (
            owner.kind is EventKind.RETRIEVAL and owner.payload["queries"] == call.payload["texts"]
        )
        assert call.payload["purpose"] == "call" and call.payload["module"] == "asyncrag"
    for retrieval in retrievals:
        assert retrieval.payload["retriever"].endswith("search") and retrieval.payload["k"] == 2
        assert retrieval.payload["settings"] == {"k": 2}
        (passages,) = retrieval.payload["results"]
        assert [CORPUS[p["id"]] for p in passages] == [p["text"] for p in passages]


ADAPTERS = ["thread", "process", pytest.param("ray", marks=pytest.mark.ray)]


class PoolRAG(dspy.Module):
    def __init__(self, searcher: Searcher) -> None:
        super().__init__()
        self.searcher = searcher
        self.answer = dspy.Predict("context, question -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        return self.answer(context=self.searcher(question).passages, question=question)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_worker_pools_record_every_call_in_the_trial(adapter, request, tmp_path):
    if adapter == "ray":
        request.getfixturevalue("ray_session")
    dspex.configure(
        workers={
            "adapter": adapter,
            "pooling_enabled": True,
            "worker_shutdown_grace_period": 1.0,
            "worker_init_timeout": 60.0,  # a loaded machine can exceed the default 10 s
            "pool_startup_timeout": 90.0,
        },
        evaluation={"harness_pool_size": 2},
    )
    count = tmp_path / "calls.txt"
    program = PoolRAG(Searcher(CountingEmbedder(count), api_key="sk-live-1234567890"))
    devset = [dspy.Example(question=question(i), answer=str(2 * i + 1)).with_inputs("question")
              for i in range(10)]  # fmt: skip
    store = dspex.ResultStore.open("memory://")
    with (
        dspy.context(lm=dspex.offline_lm()),
        dspex.experiment("pools", program_name="rag", store=store) as run,
    ):
        trial = run.evaluate(program, devset, exact)
    trial = store.get_trial(run.id, trial.id)
    retrievals = [e for e in trial.events if e.kind is EventKind.RETRIEVAL]
    calls = [e for e in trial.events if e.kind is EventKind.EMBEDDING]
    assert len(retrievals) == 10 and len(calls) == len(calls_in(count)) == 10
    ids = {e.id: e for e in trial.events}
    for retrieval in retrievals:
        p = retrieval.payload
        assert p["retriever"] == "tests.capture.rag.Searcher.__call__"
        assert p["settings"]["api_key"] == "********"
        assert p["settings"]["endpoint"] == "https://search.example/v1"
        assert ids[retrieval.parent_id].payload["module"] == "rag"
        assert [x["text"] for x in p["results"][0]] == [CORPUS[x["id"]] for x in p["results"][0]]
    assert "sk-live" not in json.dumps(trial.model_dump(mode="json"))
    for call in calls:
        assert ids[call.parent_id].kind is EventKind.RETRIEVAL
    if adapter == "thread":
        assert {e.pid for e in retrievals} == {retrievals[0].pid}


# -- dspy.Retrieve and dspy.ColBERTv2, against a ColBERTv2 server written here --------------


class _ColBERT(http.server.BaseHTTPRequestHandler):
    served: list[str] = []

    def do_GET(self) -> None:  # http.server's name
        query = parse_qs(urlparse(self.path).query)
        text, k = query["query"][0], int(query["k"][0])
        type(self).served.append(text)
        topk = [{"pid": 100 + i, "text": CORPUS[i], "score": 30.0 - i, "rank": i + 1,
                 "prob": 0.5 / (i + 1)} for i in range(k)]  # fmt: skip
        body = json.dumps({"topk": topk}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def colbert_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ColBERT)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_retrieve_over_colbert_nests_the_server_call_and_hides_the_urls_password(
    lm, store, colbert_server
):
    tag = uuid.uuid4().hex[:8]  # DSPy caches ColBERTv2 requests, on disk too
    colbert = dspy.ColBERTv2(url=f"http://reader:s3cret-pw@{colbert_server}/search")
    retrieve = dspy.Retrieve(k=2)
    with dspy.context(rm=colbert), dspex.experiment("colbert", store=store) as run:
        passages = retrieve(f"capital of Peru {tag}").passages
        direct = colbert(f"capital of Japan {tag}", k=3)
    experiment = store.get_experiment(run.id)
    assert passages == CORPUS[:2] and len(direct) == 3
    recorded = {
        (e.payload["retriever"].rsplit(".", 1)[-1], e.payload["queries"][0].split()[-2]): e
        for e in events(experiment, EventKind.RETRIEVAL)
    }
    assert len(recorded) == 3
    outer, inner = recorded["Retrieve", "Peru"], recorded["ColBERTv2", "Peru"]
    second = recorded["ColBERTv2", "Japan"]
    assert outer.payload["retriever"] == "dspy.retrievers.retrieve.Retrieve"
    assert outer.payload["settings"] == {"k": 2, "rm": "dspy.dsp.colbertv2.ColBERTv2"}
    assert [p["text"] for p in outer.payload["results"][0]] == CORPUS[:2]
    assert inner.parent_id == outer.id  # the rm's call sits in dspy.Retrieve's retrieval
    assert inner.payload["retriever"] == "dspy.dsp.colbertv2.ColBERTv2"
    assert inner.payload["k"] == 2
    assert inner.payload["results"][0][0] == {
        "text": CORPUS[0], "id": 100, "score": 30.0, "metadata": {"rank": 1, "prob": 0.5},
    }  # fmt: skip
    url = inner.payload["settings"]["url"]
    assert url == f"http://reader:***@{colbert_server}/search"
    assert second.payload["k"] == 3 and len(second.payload["results"][0]) == 3
    assert "s3cret-pw" not in json.dumps(experiment.model_dump(mode="json"))


# -- errors, hosted models, the public decorator -------------------------------------------


def test_an_embedder_that_raises_is_recorded_and_its_error_reaches_the_caller(lm, store):
    embedder = CountingEmbedder(explode_on="boom")
    with dspex.experiment("errors", store=store) as run:
        search, _ = embeddings(embedder=embedder)
        with pytest.raises(RuntimeError, match="the embedder exploded"):
            search("boom")
    experiment = store.get_experiment(run.id)
    (retrieval,) = events(experiment, EventKind.RETRIEVAL)
    assert retrieval.payload["error"]["type"] == "builtins.RuntimeError"
    assert retrieval.payload["results"] == []
    query = next(
        e for e in events(experiment, EventKind.EMBEDDING) if e.payload["purpose"] == "query"
    )
    assert query.parent_id == retrieval.id
    assert query.payload["error"]["message"] == "the embedder exploded"


@pytest.fixture
def hosted_model():
    """A hosted embedding model through LiteLLM: a custom provider written here, with a
    price, that counts its requests."""
    import litellm
    from litellm import CustomLLM
    from litellm.types.utils import Usage

    class Provider(CustomLLM):
        requests = 0

        def embedding(self, model, input, model_response, *args, **kwargs):
            type(self).requests += 1
            model_response.data = [
                {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5]}
                for i, t in enumerate(input)
            ]
            model_response.usage = Usage(prompt_tokens=3 * len(input), total_tokens=3 * len(input))
            model_response.model = model
            return model_response

    provider = Provider()
    previous = list(litellm.custom_provider_map)
    litellm.custom_provider_map = [{"provider": "dspextest", "custom_handler": provider}]
    litellm.register_model(
        {"dspextest/embed-small": {"input_cost_per_token": 1e-6, "output_cost_per_token": 0.0,
                                    "litellm_provider": "dspextest", "mode": "embedding"}}
    )  # fmt: skip
    yield provider
    litellm.custom_provider_map = previous


def test_a_hosted_embedders_tokens_cost_and_cache_hits(hosted_model, store):
    texts = [f"passage {i} {uuid.uuid4().hex}" for i in range(5)]  # DSPy's cache: on disk too
    embedder = dspy.Embedder("dspextest/embed-small", batch_size=2)
    with dspex.experiment("hosted", store=store) as run:
        first = embedder(texts)
        second = embedder(texts)  # from DSPy's cache
    assert (first == second).all() and hosted_model.requests == 3
    experiment = store.get_experiment(run.id)
    miss, hit = events(experiment, EventKind.EMBEDDING)
    assert miss.payload["model"] == "dspextest/embed-small"
    assert miss.payload["embedder"] == "dspy.clients.embedding.Embedder"
    assert (miss.payload["inputs"], miss.payload["batch_size"], miss.payload["batches"]) == (
        5,
        2,
        3,
    )
    assert miss.payload["cache_hits"] == 0 and miss.payload["dimensions"] == 3
    assert miss.payload["usage"] == {"prompt_tokens": 15, "total_tokens": 15}
    assert miss.payload["cost"] == pytest.approx(15e-6)
    assert hit.payload["cache_hits"] == 3 and hit.payload["usage"] is None
    assert hit.payload["cost"] == 0.0


def test_the_decorator_and_the_context_manager_record_a_users_search(store):
    hits = [("doc-a", 0.9), ("doc-b", 0.4)]

    @dspex.retriever(name="bm25", settings={"index": "wiki", "token": "tok-secret"})
    def bm25(queries: list[str], top_k: int = 2, language: str = "en"):
        return [[{"doc_id": d, "content": f"{q}: {d}", "score": s} for d, s in hits[:top_k]]
                for q in queries]  # fmt: skip

    with dspex.experiment("user search", store=store) as run:
        bm25(["alpha", "beta"], top_k=2)
        with dspex.retrieval("web", "gamma", k=1, settings={"api_key": "sk-1"}) as found:
            found.returned(["only one"])
        with pytest.raises(KeyError), dspex.retrieval("web", "delta"):
            raise KeyError("no index")
    experiment = store.get_experiment(run.id)
    first, second, third = events(experiment, EventKind.RETRIEVAL)
    assert first.payload["retriever"] == "bm25" and first.payload["k"] == 2
    assert first.payload["queries"] == ["alpha", "beta"]
    assert first.payload["settings"] == {
        "index": "wiki", "token": "********", "language": "en", "top_k": 2,
    }  # fmt: skip
    assert [[p["id"] for p in one] for one in first.payload["results"]] == [["doc-a", "doc-b"]] * 2
    assert first.payload["results"][1][0] == {"text": "beta: doc-a", "id": "doc-a", "score": 0.9}
    assert second.payload["results"] == [[{"text": "only one", "id": None, "score": None}]]
    assert second.payload["settings"] == {"api_key": "********"} and second.payload["k"] == 1
    assert third.payload["error"]["type"] == "builtins.KeyError"


def test_outside_an_experiment_nothing_is_recorded_and_dspy_is_untouched():
    original = dspy.retrievers.Embeddings.__dict__["forward"]
    embedder_call = dspy.Embedder.__dict__["__call__"]
    with dspex.experiment("on", store=dspex.ResultStore.open("memory://")):
        assert dspy.retrievers.Embeddings.__dict__["forward"] is not original
    assert not instrument.is_instrumented()
    assert dspy.retrievers.Embeddings.__dict__["forward"] is original
    assert dspy.Embedder.__dict__["__call__"] is embedder_call
    search, embedder = embeddings()
    assert search("What is 1 + 2?").passages and embedder.calls == 2


def test_a_failure_of_dspexs_own_code_records_less_and_never_breaks_the_search(
    lm, store, monkeypatch
):
    from dspex.capture import dspy_retrieval

    def broken(*args, **kwargs):
        raise ValueError("dspex's own bug")

    monkeypatch.setattr(dspy_retrieval, "begin_retrieval", broken)
    with dspex.experiment("degraded", store=store) as run:
        search, _ = embeddings()
        first = search("What is 1 + 2?")
        second = search("What is 2 + 3?")
    assert first.passages and second.passages
    experiment = store.get_experiment(run.id)
    assert events(experiment, EventKind.RETRIEVAL) == []
    (warning,) = [w for w in experiment.warnings if "degraded" in w]
    assert "dspy.retrievers.Embeddings" in warning and "dspex's own bug" in warning
    monkeypatch.undo()
    with dspex.experiment("restored", store=store) as run:  # applied anew: records again
        search("What is 3 + 4?")
    assert len(events(store.get_experiment(run.id), EventKind.RETRIEVAL)) == 1


def test_a_retriever_built_before_the_experiment_records_its_query_embeddings(lm, engine, store):
    # built at import time, as programs often are: before dspex patched DSPy, so its
    # Unbatchify holds DSPy's own _batch_forward
    search, embedder = embeddings()
    program = RAG(search)
    with dspex.experiment("built before", store=store) as run:
        for i in range(5):
            program(question=question(i))
    experiment = store.get_experiment(run.id)
    retrievals = events(experiment, EventKind.RETRIEVAL)
    queries = events(experiment, EventKind.EMBEDDING)
    assert len(retrievals) == program.searches == 5
    assert len(queries) == embedder.calls - 1 == 5  # the index was built before: not here
    assert all(q.payload["purpose"] == "query" for q in queries)
    assert all(r.payload["batched"] == 1 for r in retrievals)
    assert all(p["score"] is not None for r in retrievals for p in r.payload["results"][0])
