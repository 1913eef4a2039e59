"""The timeline builder: ordering, blocks, nesting, parent diff, errors, time, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dspex import (
    Experiment,
    PredictorVariables,
    ProgramInfo,
    TraceEvent,
    Trial,
    Variables,
    new_id,
)
from dspex.view import TrialView
from dspex.view.timeline import build_timeline, format_score, variables_diff

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(
    trial_id,
    seq,
    source,
    kind,
    payload=None,
    *,
    parent=None,
    worker="main",
    ms=0,
    pid=1,
    event_id=None,
):
    return TraceEvent(
        id=event_id or new_id("evt"),
        trial_id=trial_id,
        parent_id=parent,
        sequence=seq,
        timestamp=T0 + timedelta(milliseconds=ms),
        monotonic_ns=ms * 1_000_000,
        source=source,
        kind=kind,
        pid=pid,
        worker=worker,
        payload=payload or {},
    )


def _trial(events_of, **kw):
    trial_id = new_id("trl")
    return Trial(
        id=trial_id,
        experiment_id=new_id("exp"),
        index=kw.pop("index", 0),
        started_at=T0,
        events=tuple(events_of(trial_id)),
        **kw,
    )


def test_events_are_ordered_by_sequence_not_by_storage_order():
    def events(tid):
        return [
            _event(tid, 1, "evaluation", "trial_score", {"score": 1.0}, ms=5),
            _event(tid, 0, "orchestration", "step", {"step": 1}, ms=0),
        ]

    timeline = build_timeline(_trial(events))
    assert [e.event.sequence for e in timeline.entries] == [0, 1]


def test_consecutive_events_of_one_source_form_one_block_listing_its_workers():
    def events(tid):
        return [
            _event(tid, 0, "orchestration", "step", {"step": 1}),
            _event(tid, 1, "orchestration", "decision", {"decision": "d"}),
            _event(tid, 2, "execution", "log", {"message": "a"}, worker="worker-1"),
            _event(tid, 3, "execution", "log", {"message": "b"}, worker="worker-2"),
            _event(tid, 4, "execution", "log", {"message": "c"}, worker="worker-1"),
            _event(tid, 5, "evaluation", "trial_score", {"score": 0.5}),
            _event(tid, 6, "execution", "log", {"message": "d"}, worker="worker-2"),
        ]

    timeline = build_timeline(_trial(events))
    shape = [(b.source, b.workers, len(b.entries)) for b in timeline.blocks]
    assert shape == [
        ("orchestration", ("main",), 2),
        ("execution", ("worker-1", "worker-2"), 3),
        ("evaluation", ("main",), 1),
        ("execution", ("worker-2",), 1),
    ]
    assert timeline.blocks[1].header[:2] == (
        ("Timestamp", "2026-01-01T00:00:00.000Z"),
        ("Worker", "worker-1, worker-2"),
    )
    # Parallel workers' events are told apart within the block in every format.
    view = TrialView(
        Experiment(
            id=timeline.trial.experiment_id,
            name="x",
            program=ProgramInfo(name="p"),
            trials=(timeline.trial,),
        ),
        timeline.trial,
    )
    assert "Log @worker-2" in view.to_text()
    assert 'class="badge worker">worker-2<' in view.to_html()
    assert worker_filtered(timeline).blocks[1].workers == ("worker-2",)


def worker_filtered(timeline):
    return timeline.filter(workers=["worker-2", "main"])


def test_module_nesting_follows_parent_ids_and_lm_calls_inherit_the_module():
    outer, inner = new_id("evt"), new_id("evt")

    def events(tid):
        return [
            _event(
                tid, 0, "execution", "module_start", {"module": "qa", "class": "QA"}, event_id=outer
            ),
            _event(
                tid,
                1,
                "execution",
                "module_start",
                {"module": "qa.predict", "class": "dspy.Predict"},
                parent=outer,
                event_id=inner,
            ),
            _event(
                tid,
                2,
                "execution",
                "lm_call",
                {"model": "m", "messages": [], "response": ["x"]},
                parent=inner,
            ),
            _event(
                tid,
                3,
                "execution",
                "module_end",
                {"module": "qa.predict", "start_id": inner},
                parent=outer,
            ),
            _event(tid, 4, "execution", "module_end", {"module": "qa", "start_id": outer}),
        ]

    timeline = build_timeline(_trial(events))
    assert [(e.depth, e.module) for e in timeline.entries] == [
        (0, "qa"),
        (1, "qa.predict"),
        (2, "qa.predict"),
        (1, "qa.predict"),
        (0, "qa"),
    ]
    assert timeline.lm_call_count == 1
    assert timeline.modules == ("qa", "qa.predict")


def test_parent_cycles_do_not_hang():
    a, b = new_id("evt"), new_id("evt")

    def events(tid):
        return [
            _event(tid, 0, "execution", "log", {}, parent=b, event_id=a),
            _event(tid, 1, "execution", "log", {}, parent=a, event_id=b),
        ]

    assert len(build_timeline(_trial(events)).entries) == 2


def test_parent_diff_of_instructions_demos_and_lm_settings(simba):
    rule_child, demo_child = simba.trials[1], simba.trials[2]
    rule = build_timeline(rule_child, simba)
    assert rule.parent == simba.trials[0]
    assert [(c.predictor, c.field) for c in rule.changes] == [("qa.predict", "instructions")]
    assert rule.changes[0].after.startswith(rule.changes[0].before)
    assert rule.strategy == "append_a_rule"
    demo = build_timeline(demo_child, simba)
    assert [(c.predictor, c.field) for c in demo.changes] == [("qa.predict", "demos")]
    assert len(demo.changes[0].after) == len(demo.changes[0].before) + 1
    assert demo.strategy == "append_a_demo"
    temperature = build_timeline(simba.trials[3], simba).changes[-1]
    assert (temperature.predictor, temperature.field, temperature.before, temperature.after) == (
        "lm",
        "temperature",
        0.0,
        1.0,
    )


def test_baseline_has_no_parent_and_no_diff(simba):
    timeline = build_timeline(simba.trials[0], simba)
    assert timeline.parent is None and timeline.changes == () and timeline.strategy is None


def test_variables_diff_of_identical_variables_is_empty():
    variables = Variables(predictors={"p": PredictorVariables(instructions="x")})
    trial = _trial(lambda tid: [], variables=variables)
    assert variables_diff(trial, trial) == []


def test_errors_are_collected_once_with_their_traceback(simba):
    timeline = build_timeline(simba.trials[3], simba)
    assert len(timeline.problems) == 1
    problem = timeline.problems[0]
    assert problem.type.endswith("AdapterParseError")
    assert "Traceback (most recent call last)" in problem.traceback
    failed = [e for e in timeline.entries if e.failed]
    assert {e.kind for e in failed} == {"module_end", "example_result"}


def test_time_counts_what_spans_cover_and_adds_up():
    start = new_id("evt")

    def events(tid):
        return [
            _event(tid, 0, "orchestration", "step", {}, ms=0),
            _event(tid, 1, "orchestration", "decision", {}, ms=4),
            _event(tid, 2, "execution", "module_start", {"module": "qa"}, ms=5, event_id=start),
            _event(
                tid,
                3,
                "execution",
                "lm_call",
                {"module": "qa", "latency_ms": 8},
                ms=15,
                parent=start,
            ),  # fmt: skip
            _event(tid, 4, "execution", "module_end", {"module": "qa", "start_id": start}, ms=20),
            _event(tid, 5, "evaluation", "example_result", {"latency_ms": 18}, ms=22),
            _event(tid, 6, "evaluation", "trial_score", {"score": 1}, ms=40),
        ]

    timeline = build_timeline(_trial(events))
    shares = {s.label: s.ms for s in timeline.time_by_source}
    assert shares == {
        "execution": pytest.approx(15.0),  # the module call, 5 to 20
        "evaluation": pytest.approx(3.0),  # the example run (4 to 22) outside the call
        "orchestration": pytest.approx(4.0),  # step to decision
        "waiting": pytest.approx(18.0),  # after the example until the score
    }
    assert sum(s.fraction for s in timeline.time_by_source) == pytest.approx(1.0)
    assert timeline.time_by_module[0].label == "qa"


def test_idle_gaps_after_the_optimizer_decided_are_waiting_not_orchestration():
    # A candidate is created, then waits 25 ms for its evaluation to start: before, the
    # whole gap was attributed to the event before it ("Orchestration 81%").
    def events(tid):
        return [
            _event(tid, 0, "orchestration", "decision", {}, ms=0),
            _event(tid, 1, "orchestration", "candidate_created", {}, ms=2),
            _event(tid, 2, "evaluation", "example_result", {"latency_ms": 3}, ms=30),
        ]

    shares = {s.label: s.ms for s in build_timeline(_trial(events)).time_by_source}
    assert shares == {
        "orchestration": pytest.approx(2.0),
        "waiting": pytest.approx(25.0),
        "evaluation": pytest.approx(3.0),
    }


def test_an_optimizer_waiting_for_other_trials_is_not_busy():
    experiment_id = new_id("exp")

    def compile_events(tid):
        return [
            _event(tid, 0, "orchestration", "step", {}, ms=0),
            _event(tid, 1, "orchestration", "decision", {}, ms=100),
        ]

    def candidate_events(tid):
        return [
            _event(tid, 0, "evaluation", "example_result", {}, ms=10),
            _event(tid, 1, "evaluation", "example_result", {}, ms=90),
        ]

    compile_trial = _trial(compile_events).replace(experiment_id=experiment_id)
    candidate = _trial(candidate_events, index=1).replace(experiment_id=experiment_id)
    experiment = Experiment(
        id=experiment_id,
        name="x",
        program=ProgramInfo(name="p"),
        trials=(compile_trial, candidate),
    )
    shares = {s.label: s.ms for s in build_timeline(compile_trial, experiment).time_by_source}
    assert shares == {"orchestration": pytest.approx(20.0), "waiting": pytest.approx(80.0)}


def test_filters_by_source_worker_module_and_text(simba):
    timeline = build_timeline(simba.trials[1], simba)
    only_orch = timeline.filter(sources=["orchestration"])
    assert {e.source for e in only_orch.entries} == {"orchestration"}
    assert only_orch.event_count < timeline.event_count
    worker = timeline.filter(workers=["worker-2"])
    assert {e.event.worker for e in worker.entries} == {"worker-2"}
    module = timeline.filter(modules=["simba.offer_feedback"])
    assert {e.module for e in module.entries} == {"simba.offer_feedback"}
    assert module.lm_call_count == 1
    found = timeline.filter(text="HIGH-VARIANCE bucket")
    assert [e.kind for e in found.entries] == ["decision"]
    assert timeline.filter(text="no such text anywhere").blocks == ()


def test_decision_entry_reads_like_the_design_document(simba):
    decision = next(
        e for e in build_timeline(simba.trials[1], simba).entries if e.kind == "decision"
    )
    fields = dict(decision.fields)
    assert fields["Decision"] == "Propose a new candidate from candidate 0"
    assert fields["Strategy"] == "append_a_rule"
    assert fields["Rationale"].startswith("High-variance bucket for example 2")
    assert fields["Action"].startswith("OfferFeedback advice: ")


def test_lm_call_entry_keeps_prompt_messages_and_response(simba):
    call = next(e for e in build_timeline(simba.trials[0], simba).entries if e.is_lm_call)
    labels = [label for label, _ in call.texts]
    assert labels == ["prompt · system", "prompt · user", "response"]
    assert dict(call.fields)["Tokens"].endswith(
        "= " + str(call.event.payload["usage"]["total_tokens"])
    )


@pytest.mark.parametrize(
    ("score", "text"), [(None, "n/a"), (0.85, "0.85"), (1.0, "1"), (2 / 3, "0.6667"), (0.0, "0")]
)
def test_format_score(score, text):
    assert format_score(score) == text


def test_two_workers_keep_their_call_trees_whole():
    # Two workers run one example each, their events interleaved by sequence.
    a_qa, a_pred, b_qa, b_pred = (new_id("evt") for _ in range(4))

    def events(tid):
        def start(seq, eid, module, worker, parent=None):
            payload = {"module": module, "class": "X"}
            return _event(tid, seq, "execution", "module_start", payload, parent=parent,
                          worker=worker, event_id=eid)  # fmt: skip

        def end(seq, start_id, module, worker, parent=None):
            payload = {"module": module, "start_id": start_id}
            return _event(tid, seq, "execution", "module_end", payload, parent=parent,
                          worker=worker)  # fmt: skip

        def call(seq, parent, worker):
            payload = {"model": "m", "module": "qa.predict", "response": [worker]}
            return _event(tid, seq, "execution", "lm_call", payload, parent=parent, worker=worker)

        def result(seq, worker):
            return _event(tid, seq, "evaluation", "example_result", {"example": worker},
                          worker=worker)  # fmt: skip

        return [
            start(0, a_qa, "qa", "A"),
            start(1, a_pred, "qa.predict", "A", a_qa),
            start(2, b_qa, "qa", "B"),
            start(3, b_pred, "qa.predict", "B", b_qa),
            call(4, b_pred, "B"),  # B's call lands right under A's qa.predict by sequence
            call(5, a_pred, "A"),
            end(6, b_pred, "qa.predict", "B", b_qa),
            end(7, a_pred, "qa.predict", "A", a_qa),
            end(8, b_qa, "qa", "B"),
            result(9, "B"),
            end(10, a_qa, "qa", "A"),
            result(11, "A"),
        ]

    timeline = build_timeline(_trial(events))
    order = [(e.event.worker, e.kind, e.depth) for e in timeline.entries]
    assert order == [
        ("A", "module_start", 0),
        ("A", "module_start", 1),
        ("A", "lm_call", 2),
        ("A", "module_end", 1),
        ("A", "module_end", 0),
        ("A", "example_result", 0),
        ("B", "module_start", 0),
        ("B", "module_start", 1),
        ("B", "lm_call", 2),
        ("B", "module_end", 1),
        ("B", "module_end", 0),
        ("B", "example_result", 0),
    ]
    # Each run becomes its own blocks, one worker each, in every format.
    assert [(b.source, b.workers) for b in timeline.blocks] == [
        ("execution", ("A",)),
        ("evaluation", ("A",)),
        ("execution", ("B",)),
        ("evaluation", ("B",)),
    ]
    text = TrialView(
        Experiment(id=timeline.trial.experiment_id, name="x", program=ProgramInfo(name="p"),
                   trials=(timeline.trial,)),
        timeline.trial,
    ).to_text()  # fmt: skip
    assert text.count("── Execution") == 2 and "@" not in text


def test_a_trial_without_variables_shows_no_diff(simba):
    # SIMBA's trajectory sampling runs the parent as it is and records no variables: its
    # empty variables are not "instructions deleted".
    parent = simba.trials[0]
    sampling = simba.trials[1].replace(variables=Variables())
    experiment = simba.replace(trials=(parent, sampling, *simba.trials[2:]))
    timeline = build_timeline(sampling, experiment)
    assert timeline.parent == parent
    assert timeline.changes == () and not timeline.diffable
    view = TrialView(experiment, sampling)
    for text in (view.to_text(), view.to_markdown()):
        assert "this trial records no variables" in text
        assert "- Given the fields" not in text
    assert "<del>" not in view.to_html()
