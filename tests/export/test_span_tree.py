"""The waterfall and the OTLP export draw one span tree: the same calls under the same parents.

Each trial is read both ways, and every waterfall row must be the export span of the same
event, under the export span of the row's parent, at the depth of its export ancestry; the
parents are also checked against the records alone (``expect.expected_parent``). Trials:
a threaded SIMBA compile, RAG evaluations with retrievals and embedding calls in a thread
pool and in worker processes, and hand-written events (steps between calls, a module end
without its start, a call the trial ended inside, a parent that is not in the trial).
"""

from __future__ import annotations

from datetime import timedelta

import dspy
import pytest

import dspex
from dspex import EventKind, new_id, utc_now
from dspex.export import trial_spans
from dspex.export.spans import span_id_of
from dspex.model.spans import span_tree
from dspex.view.spans import trial_spans as view_spans
from dspex.view.timeline import build_timeline
from dspex.view.waterfall import MAX_ROWS, timeline_waterfall
from tests.capture.rag import CountingEmbedder, Searcher, question

from .expect import expected_parent
from .test_mapping import event, one_trial

ROW_KINDS = {"module_start", "lm_call", "tool_call", "retrieval", "embedding", "example_result"}


def agree(trial, experiment) -> list:
    """Check the waterfall of ``trial`` against its export; the rows, for more checks."""
    rows = timeline_waterfall(build_timeline(trial, experiment)).rows
    spans = trial_spans(trial, experiment)
    root, by_event = spans[0], {s.attributes["dspex.event_id"]: s for s in spans[1:]}
    by_span_id = {s.span_id: s for s in spans}

    def export_depth(span) -> int:
        depth = 0
        while span.parent_span_id != root.span_id:
            span = by_span_id[span.parent_span_id]
            depth += 1
        return depth

    for row in rows:
        span = by_event[row.event_id]
        want = root.span_id if row.parent_id is None else span_id_of(row.parent_id)
        assert span.parent_span_id == want, (trial.name, row.label, row.event_id)
        assert row.parent_id == expected_parent(trial, row.span.event), row.label
        assert row.depth == export_depth(span), row.label
        # the bar is the span: same start and end (the view counts from the first event)
        assert abs(row.span.ms * 1e6 - (span.end_ns - span.start_ns)) < 1000, row.label
    shown = {row.event_id for row in rows}
    drawable = {
        event_id
        for event_id, s in by_event.items()
        if next(e for e in trial.events if e.id == event_id).kind.value in ROW_KINDS
        and "dspex.unfinished" not in s.attributes
    }
    if len(drawable) <= MAX_ROWS:
        assert drawable <= shown | {r.event_id for r in rows if r.span.ms == 0}
    return list(rows)


def test_a_threaded_simba_compile(recorded):
    deep = workers = 0
    for trial in recorded.experiment.trials:
        rows = agree(trial, recorded.experiment)
        deep = max([deep, *(r.depth for r in rows)])
        workers = max(workers, len({r.span.worker for r in rows}))
    assert deep >= 2 and workers >= 2  # calls inside modules, on several threads


class PoolRAG(dspy.Module):
    def __init__(self, searcher: Searcher) -> None:
        super().__init__()
        self.searcher = searcher
        self.answer = dspy.Predict("context, question -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        return self.answer(context=self.searcher(question).passages, question=question)


def exact(example, prediction, trace=None) -> bool:
    return example.answer == prediction.answer


@pytest.mark.parametrize("adapter", ["thread", "process"])
def test_retrievals_and_embedding_calls_in_worker_pools(adapter, tmp_path):
    devset = [dspy.Example(question=question(i), answer=str(2 * i + 1)).with_inputs("question")
              for i in range(6)]  # fmt: skip
    store = dspex.ResultStore.open("memory://")
    program = PoolRAG(Searcher(CountingEmbedder(tmp_path / "calls.txt"), api_key="sk-1"))
    with (
        dspex.config.overrides(
            workers={
                "adapter": adapter,
                "pooling_enabled": True,
                "worker_shutdown_grace_period": 1.0,
            },
            evaluation={"harness_pool_size": 2},
        ),  # fmt: skip
        dspy.context(lm=dspex.offline_lm()),
        dspex.experiment("pools", program_name="rag", store=store) as run,
    ):
        trial = run.evaluate(program, devset, exact)
    experiment = store.get_experiment(run.id)
    trial = store.get_trial(run.id, trial.id)
    rows = agree(trial, experiment)
    kinds = {r.span.kind for r in rows}
    assert {EventKind.RETRIEVAL, EventKind.EMBEDDING, EventKind.LM_CALL} <= kinds
    by_id = {r.event_id: r for r in rows}
    for row in rows:
        if row.span.kind is EventKind.EMBEDDING:  # the embedder runs inside the search
            assert by_id[row.parent_id].span.kind is EventKind.RETRIEVAL
            assert row.depth == by_id[row.parent_id].depth + 1
    if adapter == "process":
        assert len({e.pid for e in trial.events}) >= 2


def test_hand_written_trees_steps_are_skipped_and_odd_records_still_nest():
    t0 = utc_now()

    def at(ms: float):
        return t0 + timedelta(milliseconds=ms)

    names = {}

    def events_for(trial_id):
        step = event(trial_id, 0, "step", {"step": 1, "name": "s"}, at=at(0),
                     source="orchestration")  # fmt: skip
        outer = event(trial_id, 1, "module_start", {"module": "outer", "inputs": {}},
                      parent=step.id, at=at(1))  # fmt: skip
        log = event(trial_id, 2, "log", {"level": "info", "message": "m"}, parent=outer.id,
                    at=at(2))  # fmt: skip
        inner = event(trial_id, 3, "module_start", {"module": "outer.inner", "inputs": {}},
                      parent=log.id, at=at(3))  # fmt: skip
        lm = event(trial_id, 4, "lm_call", {"model": "m", "latency_ms": 4.0}, parent=inner.id,
                   at=at(8))  # fmt: skip
        inner_end = event(trial_id, 5, "module_end",
                          {"module": "outer.inner", "start_id": inner.id, "latency_ms": 6.0},
                          parent=inner.id, at=at(9))  # fmt: skip
        stray = event(trial_id, 6, "tool_call", {"tool": "t", "latency_ms": 1.0},
                      parent=new_id("evt"), at=at(10))  # fmt: skip
        orphan = event(trial_id, 7, "module_end", {"module": "orphan", "latency_ms": 2.0},
                       parent=outer.id, at=at(11))  # fmt: skip
        outer_end = event(trial_id, 8, "module_end", {"module": "outer", "start_id": outer.id},
                          at=at(12))  # fmt: skip
        open_call = event(trial_id, 9, "module_start", {"module": "late", "inputs": {}},
                          at=at(13))  # fmt: skip
        names.update(step=step.id, outer=outer.id, inner=inner.id, lm=lm.id, stray=stray.id,
                     orphan=orphan.id, open=open_call.id)  # fmt: skip
        return [step, outer, log, inner, lm, inner_end, stray, orphan, outer_end, open_call]

    trial, experiment = one_trial(events_for)
    tree = span_tree(trial.events)
    parents = {node.id: node.parent for node in tree}
    assert parents == {
        names["outer"]: None,  # the step is not a span
        names["inner"]: names["outer"],  # through the log
        names["lm"]: names["inner"],
        names["stray"]: None,  # its parent is not in the trial
        names["orphan"]: names["outer"],  # an end without its start is a span of its own
        names["open"]: None,
    }
    depths = {node.id: node.depth for node in tree}
    assert depths[names["lm"]] == 2 and depths[names["orphan"]] == 1
    inner = tree.node(names["inner"])
    assert inner is not None and inner.finish == at(9) and inner.start == at(3)
    lm = tree.node(names["lm"])
    assert lm is not None and (lm.start, lm.finish) == (at(4), at(8))
    assert tree.node(names["open"]).finish is None
    assert tree.enclosing(names["step"]) is None
    # the waterfall and the timeline's spans read the same tree
    spans = {s.event.id: s for s in view_spans(trial.events)}
    assert {i: spans[i].parent for i in parents} == parents
    assert spans[names["step"]].depth == 0 and spans[names["lm"]].depth == 2
    rows = agree(trial, experiment)
    assert {r.event_id for r in rows} >= {names["outer"], names["inner"], names["lm"]}
    orphan_row = next(r for r in rows if r.event_id == names["orphan"])
    assert orphan_row.label == "orphan" and orphan_row.depth == 1
