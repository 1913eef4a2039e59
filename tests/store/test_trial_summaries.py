"""Trials read without their events (``get_experiment(events=False)``), on every backend.

Each trial then carries the summary of its events (``Trial.event_summary``) that the store
kept at the seal; it must equal the summary computed from the full trial, the rest of the
trial must be the full trial's, the experiment page rendered from it must be the page
rendered from the full record, and records sealed without summaries (before they were
kept) must read the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dspex import Experiment, ProgramInfo, ResultStore, TraceEvent, Trial, new_id
from dspex.model.eventsummary import EventSummary, summarize_events
from dspex.store import encode_parts
from dspex.store.codec import encode
from dspex.view.html import experiment_html
from tests.view.fixtures import simba_experiment

T0 = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)


def _event(trial_id: str, i: int, kind: str, payload: dict[str, Any]) -> TraceEvent:
    return TraceEvent(
        trial_id=trial_id, sequence=i, timestamp=T0 + timedelta(milliseconds=i),
        monotonic_ns=i, source="orchestration" if kind != "lm_call" else "execution",
        kind=kind, pid=1, worker="w", payload=payload,
    )  # fmt: skip


def rich_experiment() -> Experiment:
    """A compile trial with every kind of event the summary reads (decisions, a Pareto
    front, a Return decision, the optimizer's end), candidates with LM calls, cache hits,
    outcomes and old-style trial_score events, and a trial without events."""
    exp_id = new_id("exp")
    compile_id, cand_ids = new_id("trl"), [new_id("trl") for _ in range(3)]
    events = [
        _event(compile_id, 0, "candidate_created",
               {"optimizer": "GEPA", "candidate": cand_ids[1], "name": "c1",
                "parents": [cand_ids[0]], "strategy": "reflect", "changes": []}),
        _event(compile_id, 1, "decision",
               {"optimizer": "GEPA", "step": 1, "decision": "Keep c1", "strategy": None,
                "rationale": "better", "action": None,
                "details": {"pareto_front": [cand_ids[0], cand_ids[1]],
                            "valset_scores": {cand_ids[0]: 0.5, cand_ids[1]: 0.75},
                            "best_on": {cand_ids[1]: 3}, "valset_size": 4,
                            "displaced": [cand_ids[2]]}}),
        _event(compile_id, 2, "decision",
               {"optimizer": "GEPA", "step": None, "decision": f"Return {cand_ids[1]}",
                "strategy": None, "rationale": "highest valset score", "action": None,
                "details": {"returned": cand_ids[1]}}),
        _event(compile_id, 3, "optimizer_end",
               {"optimizer": "GEPA", "ok": True, "error": None,
                "best_candidate": cand_ids[1], "best_score": 0.75,
                "budget": {"used": 10}}),
    ]  # fmt: skip
    trials = [
        Trial(id=compile_id, experiment_id=exp_id, index=0, name="compile",
              metadata={"role": "compile", "optimizer": "GEPA"}, started_at=T0,
              finished_at=T0 + timedelta(seconds=9), events=tuple(events)),
    ]  # fmt: skip
    for k, trial_id in enumerate(cand_ids):
        mine = [
            _event(trial_id, i, "lm_call",
                   {"model": "m", "messages": [], "response": "4", "cache_hit": i % 2 == 0})
            for i in range(3 + k)
        ] + [
            _event(trial_id, 10, "decision",
                   {"optimizer": "GEPA", "step": k, "decision": "verdict",
                    "details": {"accepted": k != 2} if k else {"skipped": True}}),
            _event(trial_id, 11, "trial_score",
                   {"score": 0.25 * k, "metric": "em", "n": 4 + k, "failures": 0,
                    "scope": "minibatch"}),
        ]  # fmt: skip
        trials.append(
            Trial(id=trial_id, experiment_id=exp_id, index=k + 1, name=f"c{k}", score=0.25 * k,
                  parent_trial_ids=(compile_id,), started_at=T0,
                  finished_at=T0 + timedelta(seconds=1), events=tuple(mine))
        )  # fmt: skip
    trials.append(Trial(experiment_id=exp_id, index=4, name="quiet", started_at=T0))
    return Experiment(id=exp_id, name="rich", program=ProgramInfo(name="qa"),
                      status="completed", trials=tuple(trials))  # fmt: skip


def _check_headers(store, experiment: Experiment) -> Experiment:
    headers = store.get_experiment(experiment.id, events=False)
    full = store.get_experiment(experiment.id)
    assert full == experiment  # the record itself is exactly what was archived
    assert [t.id for t in headers.trials] == [t.id for t in full.trials]
    for bare, whole in zip(headers.trials, full.trials, strict=True):
        assert bare.events == ()
        assert bare.event_summary == summarize_events(whole.events)
        assert bare.event_summary.events == len(whole.events)
        assert bare.model_copy(update={"event_summary": None}) == whole.model_copy(
            update={"events": ()}
        )
    assert headers.model_copy(update={"trials": ()}) == full.model_copy(update={"trials": ()})
    return headers


def test_the_summary_is_the_one_of_the_full_trial(store):
    experiment = rich_experiment()
    store.archive_experiment(experiment)
    headers = _check_headers(store, experiment)
    compiled = headers.trials[0].event_summary
    assert compiled.return_decision is not None and compiled.pareto_updates == 1
    assert compiled.optimizer_end == {
        "optimizer": "GEPA", "ok": True, "error": None,
        "best_candidate": experiment.trials[2].id, "best_score": 0.75,
    }  # fmt: skip
    assert [t.event_summary.decided for t in headers.trials[1:4]] == [
        "no change", "accepted", "rejected",
    ]  # fmt: skip
    assert headers.trials[4].event_summary == EventSummary()
    assert store.verify() == []


def test_headers_the_fast_json_parser_refuses_read_the_same(store):
    # trial headers are parsed all at once by orjson; what it refuses (an infinite score,
    # an integer beyond 64 bits) falls back to the standard parser, with the same result
    experiment = rich_experiment()
    odd = experiment.trials[1].replace(score=float("inf"), metadata={"seed": 2**70})
    experiment = experiment.replace(trials=(experiment.trials[0], odd, *experiment.trials[2:]))
    store.archive_experiment(experiment)
    headers = _check_headers(store, experiment)
    assert headers.trials[1].score == float("inf")
    assert headers.trials[1].metadata["seed"] == 2**70


def test_trial_headers_parsed_together_must_be_one_value_each():
    from dspex.store._summaries import load_each

    assert load_each([b'{"a":1}', b'{"b":NaN}', b"[]"])[0] == {"a": 1}
    for parts in ([b'{"a":1},{"b":2}'], [b'{"a":1}', b""], [b'{"a":']):
        with pytest.raises(ValueError):
            load_each(parts)


def test_archiving_again_changes_nothing(store):
    experiment = rich_experiment()
    checksum = store.archive_experiment(experiment)
    assert checksum == experiment.content_checksum()
    assert store.archive_experiment(store.get_experiment(experiment.id)) == checksum
    assert store.archive_experiment(experiment) == checksum


def test_trials_of_appended_events_are_summarized_at_the_seal(store):
    experiment = rich_experiment()
    store.start_experiment(experiment.replace(status="running", trials=()))
    bare = []
    for trial in experiment.trials:
        if trial.events:
            store.append_events(experiment.id, trial.id, 0, trial.events[:2])
            store.append_events(experiment.id, trial.id, 2, trial.events[2:])
        bare.append(trial.replace(events=()))
        store.record_trial(experiment.id, bare[-1])
    # a running experiment's trials read without events are summarized too
    running = store.get_experiment(experiment.id, events=False)
    assert [t.event_summary for t in running.trials] == [
        summarize_events(t.events) for t in experiment.trials
    ]
    store.archive_experiment(experiment.replace(trials=tuple(bare)))
    _check_headers(store, experiment)


def test_a_record_sealed_without_summaries_reads_and_renders_the_same(store):
    """Records written before summaries were kept: the store computes them."""
    experiment = simba_experiment()
    record = encode(experiment, store.backend.part_transform)
    assert not record.summaries
    assert store.backend.seal(record).stored
    headers = _check_headers(store, experiment)
    assert all(t.event_summary is not None for t in headers.trials)
    assert experiment_html(headers) == experiment_html(experiment)


@pytest.mark.parametrize("make", [simba_experiment, rich_experiment])
def test_the_page_from_trials_without_events_is_the_page_of_the_full_record(store, make):
    experiment = make()
    store.archive_experiment(experiment)
    headers = store.get_experiment(experiment.id, events=False)
    url = lambda t: f"/experiments/{t.experiment_id}/trials/{t.id}"  # noqa: E731
    assert experiment_html(headers, trial_url=url) == experiment_html(experiment, trial_url=url)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_sql_summaries_that_fail_their_check_are_read_from_the_record(store):
    """The sql store keeps each trial's header and summary in checked columns: a copy that
    fails its digest is read from the record instead, and verify names it; a copy that is
    wrong yet carries a valid digest is found by verify."""
    from sqlalchemy import update

    from dspex.store import _sqltables as tables

    experiment = rich_experiment()
    store.archive_experiment(experiment)
    assert store.verify() == []
    backend = store.backend
    first, second = experiment.trials[1].id, experiment.trials[2].id
    wrong = tables.checked_text(EventSummary(events=99).to_json())
    with backend._write() as conn:  # the test damages the rows
        t = tables.trials
        conn.execute(update(t).where(t.c.trial_id == first).values(summary="0:{}"))
        conn.execute(update(t).where(t.c.trial_id == second).values(summary=wrong))
    damaged = {d.reason.split(":")[0] for d in store.verify()}
    assert damaged == {f"trial {first}", f"trial {second}"}
    with backend._write() as conn:
        conn.execute(update(tables.trials).where(tables.trials.c.trial_id == second).values(
            summary=tables.checked_text(summarize_events(experiment.trials[2].events).to_json())
        ))  # fmt: skip
    _check_headers(store, experiment)  # the damaged copy is not used


@pytest.mark.parametrize("make", [rich_experiment, simba_experiment])
def test_the_summaries_of_chunks_then_each_other_are_the_summary_of_all(make):
    """A trial summarized chunk by chunk as its events arrive: ``then`` joins the chunks'
    summaries into the one of all its events, wherever the chunks are cut."""
    for trial in make().trials:
        events = trial.events
        whole = summarize_events(events)
        for cut in range(len(events) + 1):
            for second in sorted({cut, (cut + len(events)) // 2, len(events)}):
                joined = (
                    summarize_events(events[:cut])
                    .then(summarize_events(events[cut:second]))
                    .then(summarize_events(events[second:]))
                )
                assert joined == whole, (trial.name, cut, second)


def _appending(store, experiment: Experiment, *, replay: bool, parts: bool = False) -> list[Trial]:
    """Append each trial's events in chunks (with ``replay``: each chunk sent twice and
    overlapping the previous, as a journal resends after a failure), as events or (with
    ``parts``) serialized parts, as the journal sends them; the bare trials."""

    def append(first: int, chunk: Sequence[TraceEvent]) -> None:
        if parts:
            store.append_event_parts(experiment.id, trial.id, encode_parts(first, chunk))
        else:
            store.append_events(experiment.id, trial.id, first, chunk)

    store.start_experiment(experiment.replace(status="running", trials=()))
    bare = []
    for trial in experiment.trials:
        events = trial.events
        for start in range(0, len(events), 2):
            chunk = events[start : start + 2]
            append(start, chunk)
            if replay:
                append(start, chunk)
                append(max(0, start - 1), events[max(0, start - 1) : start + 3])
        bare.append(trial.replace(events=()))
        store.record_trial(experiment.id, bare[-1])
    return bare


@pytest.mark.parametrize("parts", [False, True], ids=["events", "parts"])
@pytest.mark.parametrize("replay", [False, True])
def test_a_seal_after_appends_through_the_store_does_not_read_the_events_again(
    store, monkeypatch, replay, parts
):
    """The store summarizes each appended chunk as it arrives: sealing trials whose
    events were appended through it parses none of them (a long trial's seal read them
    all back), and a replayed or overlapping chunk counts once."""
    from dspex.store import _summaries

    experiment = rich_experiment()
    bare = _appending(store, experiment, replay=replay, parts=parts)

    def parsed(*_: object) -> None:
        raise AssertionError("the seal parsed appended events to summarize them")

    monkeypatch.setattr(_summaries, "summarize_raw", parsed)
    store.archive_experiment(experiment.replace(trials=tuple(bare)))
    _check_headers(store, experiment)


@pytest.mark.parametrize("backend", ["file", "sqlite"])
def test_events_appended_by_another_process_are_summarized_from_the_store(
    store_url_factory, monkeypatch
):
    """Events of a trial appended in part through another store (another process, or
    ``dspex store recover``): what this store saw covers only some of them, so the seal
    summarizes the stored events."""
    from dspex.store import _summaries

    url = store_url_factory()
    mine = ResultStore.open(url, auto_migrate=True).connect()
    other = ResultStore.open(url).connect()
    experiment = rich_experiment()
    mine.start_experiment(experiment.replace(status="running", trials=()))
    bare = []
    for trial in experiment.trials:
        half = len(trial.events) // 2
        if trial.events:
            mine.append_events(experiment.id, trial.id, 0, trial.events[:half])
            other.append_events(experiment.id, trial.id, half, trial.events[half:])
        bare.append(trial.replace(events=()))
    parsed = []
    real = _summaries.summarize_raw
    monkeypatch.setattr(_summaries, "summarize_raw", lambda e: parsed.append(1) or real(e))
    mine.archive_experiment(experiment.replace(trials=tuple(bare)))
    assert len(parsed) == sum(1 for t in experiment.trials if t.events)
    _check_headers(mine, experiment)
    other.close()
    mine.close()
