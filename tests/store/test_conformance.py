"""The conformance suite: every backend (memory, file, SQLite, PostgreSQL) behaves the same.

Query results are compared with the reference semantics of :mod:`dspex.store.query`
(``page`` over summaries) on generated data.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dspex import (
    ExampleResult,
    Experiment,
    ExperimentNotFound,
    ExperimentStatus,
    Hypothesis,
    ImmutableRecordError,
    InvalidIdError,
    InvalidQueryError,
    OptimizerInfo,
    ProgramInfo,
    ResultStore,
    StoreError,
    StoreUnavailable,
    StudyConflict,
    StudyNotFound,
    TraceEvent,
    Trial,
    TrialNotFound,
    ValidationError,
    new_id,
)
from dspex.analysis import with_verdict
from dspex.ids import id_at
from dspex.model import ScoreScope, StudyRecord, VerdictOutcome, best_trial_of, summarize
from dspex.model.study import CellAttempt, CellResult, StudyArm, StudyCell
from dspex.redact import redact_url
from dspex.store import EventPart, encode_parts
from dspex.store._events import PART_EVENTS
from dspex.store.codec import encode
from dspex.store.query import (
    MAX_LIMIT,
    MAX_LIST_FILTER,
    MAX_OFFSET,
    MAX_TAGS,
    Query,
    page,
    summary_of,
)
from tests.model.scored import demo_like
from tests.model.strategies import experiments

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PROGRAMS = ["qa", "rag", "a%b_c", "x'; DROP TABLE dspex_experiments; --"]
OPTIMIZERS = [None, "SIMBA", "MIPROv2"]
TAGS = ["t1", "t2", "it's", "50%"]
HYPOTHESES = [
    Hypothesis(research_question="Do appended rules beat demos?"),
    Hypothesis(research_question="Does ÉCOLE help with 100% of_cases?"),
]
DAYS = [datetime(2026, 1, d, tzinfo=UTC) for d in range(1, 6)]
NAN, INF = float("nan"), float("inf")
SCORES = [None, -0.5, 0.0, 0.5, 0.5, 1.0, NAN, INF, -INF]


EXAMPLE_SETS = ["set-a", "set-b"]


def scope_key(example_set: str) -> str:
    """The score scope key of a trial made by :func:`make_trial` on ``example_set``."""
    results = [ExampleResult(index=0, inputs={"q": example_set}, metrics={"acc": 1.0})]
    return ScoreScope.of_results(results, name="examples", metric="acc").key


def make_trial(
    experiment_id: str, index: int, score: float | None, events: int = 0, examples: str = "set-a"
) -> Trial:
    trial_id = new_id("trl")
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=index)
    return Trial(
        id=trial_id,
        experiment_id=experiment_id,
        index=index,
        score=score,
        started_at=start,
        finished_at=start + timedelta(seconds=1),
        example_results=(
            ExampleResult(index=0, inputs={"q": examples}, metrics={"acc": 1.0}, latency_ms=3.0),
        ),
        events=tuple(
            TraceEvent(
                trial_id=trial_id,
                sequence=i,
                timestamp=start,
                monotonic_ns=i,
                source="execution",
                kind="lm_call",
                pid=1,
                worker="w0",
                payload={
                    "model": "offline",
                    "messages": [{"role": "user", "content": "2+2?"}],
                    "response": "4",
                },
            )
            for i in range(events)
        ),
    )


def make_experiment(status: str = "completed", trials: int = 2, **fields) -> Experiment:
    experiment_id = new_id("exp")
    made = [make_trial(experiment_id, i, 0.25 * i, events=2) for i in range(trials)]
    best = best_trial_of(made)
    values = dict(
        id=experiment_id,
        name="demo",
        program=ProgramInfo(name="qa"),
        status=status,
        trials=tuple(made),
        best_trial_id=best.id if best else None,
        summary=summarize(made) if made else None,
    )
    return Experiment(**{**values, **fields})


@st.composite
def catalog_entries(draw) -> Experiment:
    experiment_id = new_id("exp")
    scores = draw(st.lists(st.sampled_from(SCORES), max_size=2))
    examples = draw(st.sampled_from(EXAMPLE_SETS))
    made = [make_trial(experiment_id, i, s, examples=examples) for i, s in enumerate(scores)]
    best = best_trial_of(made)
    if made and draw(st.booleans()):  # a best trial chosen by hand, maybe a NaN or inf one
        best = draw(st.sampled_from(made))
    optimizer = draw(st.sampled_from(OPTIMIZERS))
    return Experiment(
        id=experiment_id,
        name="e",
        hypothesis=draw(st.none() | st.sampled_from(HYPOTHESES)),
        program=ProgramInfo(name=draw(st.sampled_from(PROGRAMS))),
        optimizer=OptimizerInfo(name=optimizer) if optimizer else None,
        status=draw(st.sampled_from(list(ExperimentStatus))),
        created_at=draw(st.sampled_from(DAYS)) + timedelta(hours=draw(st.sampled_from([0, 0, 5]))),
        tags=tuple(draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=3))),
        trials=tuple(made),
        best_trial_id=best.id if best else None,
    )


def put(store, experiment: Experiment):
    """Store ``experiment`` (archive it, or start it and record its trials); its summary."""
    if experiment.status.is_final:
        checksum = store.archive_experiment(experiment)
        return summary_of(experiment, sealed=True, checksum=checksum)
    store.start_experiment(experiment.replace(trials=(), best_trial_id=None))
    for trial in experiment.trials:
        store.record_trial(experiment.id, trial)
    running = experiment.replace(best_trial_id=None)
    return summary_of(running, sealed=False, checksum=None)


days_text = st.sampled_from(DAYS).map(lambda d: d.date().isoformat())
filters = st.fixed_dictionaries(
    {},
    optional={
        "hypothesis": st.sampled_from(
            [h.id for h in HYPOTHESES] + ["RULES", "école", "100%", "of_c", "%", "_", "zzz"]
        ),
        "program": st.sampled_from([*PROGRAMS, "nope", "%"]),
        "optimizer": st.sampled_from(["none", "SIMBA", "MIPROv2"]),
        "status": st.sampled_from(list(ExperimentStatus)).map(str)
        | st.lists(st.sampled_from([s.value for s in ExperimentStatus]), min_size=1, max_size=2),
        "tags": st.lists(st.sampled_from(TAGS), min_size=1, max_size=2),
        "created_after": days_text,
        "created_before": days_text | st.sampled_from(DAYS),
        "scope": st.sampled_from([*map(scope_key, EXAMPLE_SETS), "ex_0000000000000000:acc"]),
        "min_score": st.sampled_from([-1, 0, 0.5, 1.0]),
        "max_score": st.sampled_from([-0.5, 0, 0.5, 2]),
        "order_by": st.sampled_from(["created", "score"]),
        "limit": st.integers(1, 6),
        "offset": st.integers(0, 3),
    },
).map(
    lambda f: f if "scope" in f or not _compares_scores(f) else {**f, "scope": scope_key("set-a")}
)


def _compares_scores(filters: dict) -> bool:
    return "min_score" in filters or "max_score" in filters or filters.get("order_by") == "score"


# -- round trips --------------------------------------------------------------------------


def test_archive_and_get_round_trip(store):
    experiment = make_experiment()
    checksum = store.archive_experiment(experiment)
    assert checksum == experiment.content_checksum()
    assert store.get_experiment(experiment.id) == experiment
    [summary] = store.query_experiments()
    assert summary == summary_of(experiment, sealed=True, checksum=checksum)


@SETTINGS
@given(data=st.data())
def test_generated_experiments_round_trip(make_store, data):
    store = make_store()
    experiment = data.draw(experiments(status=ExperimentStatus.COMPLETED))
    assert store.archive_experiment(experiment) == experiment.content_checksum()
    assert store.get_experiment(experiment.id) == experiment
    for trial in experiment.trials:
        assert store.get_trial(experiment.id, trial.id) == trial


def test_archiving_identical_content_again_changes_nothing(store):
    experiment = make_experiment()
    first = store.archive_experiment(experiment)
    copy = Experiment.from_json(experiment.to_json())
    assert store.archive_experiment(copy) == first
    assert store.count_experiments() == 1
    assert store.get_experiment(experiment.id) == experiment


def test_archiving_different_content_under_a_sealed_id_is_refused(store):
    experiment = make_experiment()
    store.archive_experiment(experiment)
    with pytest.raises(ImmutableRecordError, match=experiment.id):
        store.archive_experiment(experiment.replace(name="changed"))
    with pytest.raises(ImmutableRecordError):
        store.start_experiment(experiment.replace(status="running", trials=(), best_trial_id=None))
    with pytest.raises(ImmutableRecordError):
        store.record_trial(experiment.id, make_trial(experiment.id, 9, 0.1))
    assert store.get_experiment(experiment.id) == experiment


def test_incremental_start_record_then_archive(store):
    final = make_experiment(trials=3)
    store.start_experiment(final.replace(status="running", trials=(), best_trial_id=None))
    for count, trial in enumerate(final.trials, start=1):
        store.record_trial(final.id, trial)
        running = store.get_experiment(final.id)
        assert running.trials == final.trials[:count]
        assert store.get_trial(final.id, trial.id) == trial
        [summary] = store.query_experiments(status="running")
        assert (summary.trial_count, summary.sealed, summary.checksum) == (count, False, None)
    store.record_trial(final.id, final.trials[0])  # recording a trial twice keeps one
    assert len(store.get_experiment(final.id).trials) == 3
    checksum = store.archive_experiment(final)
    assert store.get_experiment(final.id) == final
    assert store.query_experiments() == [summary_of(final, sealed=True, checksum=checksum)]
    assert store.count_experiments(status="running") == 0


def test_get_trial_loads_one_trial_with_its_events(store):
    experiment = make_experiment(trials=3)
    store.archive_experiment(experiment)
    trial = experiment.trials[1]
    loaded = store.get_trial(experiment.id, trial.id)
    assert loaded == trial and len(loaded.events) == 2


def test_not_found_errors(store):
    missing = new_id("exp")
    with pytest.raises(ExperimentNotFound, match=missing):
        store.get_experiment(missing)
    with pytest.raises(ExperimentNotFound):
        store.get_trial(missing, new_id("trl"))
    with pytest.raises(ExperimentNotFound):
        store.record_trial(missing, make_trial(missing, 0, None))
    experiment = make_experiment()
    store.archive_experiment(experiment)
    trial_id = new_id("trl")
    with pytest.raises(TrialNotFound, match=trial_id):
        store.get_trial(experiment.id, trial_id)


# -- queries ------------------------------------------------------------------------------


@SETTINGS
@given(catalog=st.lists(catalog_entries(), max_size=12), queries=st.lists(filters, max_size=6))
def test_every_filter_matches_the_reference(make_store, catalog, queries):
    store = make_store()
    summaries = [put(store, experiment) for experiment in catalog]
    for raw in [{}, *queries]:
        expected = page(Query.parse(raw), summaries)
        assert _json(store.query_experiments(raw)) == _json(expected), raw
        unpaged = {k: v for k, v in raw.items() if k not in ("limit", "offset")}
        every = page(Query.parse({**unpaged, "limit": MAX_LIMIT}), summaries)
        assert store.count_experiments(raw) == len(every)
        assert _json(_walk_with_cursor(store, {**unpaged, "limit": 2})) == _json(every)


def _json(summaries) -> list[str]:
    """Summaries compared as their JSON (a NaN best score is not equal to itself)."""
    return [s.to_json() for s in summaries]


def _walk_with_cursor(store, filters):
    seen, cursor = [], None
    while True:
        result = store.query_experiments(filters, cursor=cursor)
        seen.extend(result)
        cursor = result.next_cursor
        if cursor is None:
            return seen


def test_order_by_score_ranks_only_scores_over_one_example_set(store):
    made = [make_experiment(trials=n) for n in (0, 3, 2)]
    exp_id = new_id("exp")
    other = make_trial(exp_id, 0, 0.9, examples="set-b")
    elsewhere = Experiment(
        id=exp_id,
        name="elsewhere",
        program=ProgramInfo(name="qa"),
        status="completed",
        trials=(other,),
        best_trial_id=other.id,
    )
    for experiment in [*made, elsewhere]:
        store.archive_experiment(experiment)
    with pytest.raises(InvalidQueryError, match="comparable only over the same examples"):
        store.query_experiments(order_by="score")
    with pytest.raises(InvalidQueryError, match="scope="):
        store.count_experiments(min_score=0.1)
    ranked = store.query_experiments(order_by="score", scope=scope_key("set-a"))
    assert [s.best_score for s in ranked] == [0.5, 0.25]  # not 0.9: another example set
    assert all(s.score_scope.key == scope_key("set-a") for s in ranked)
    by_experiment = store.query_experiments(order_by="score", scope=made[1].id)
    assert by_experiment == ranked
    assert [s.id for s in store.query_experiments(scope=exp_id, min_score=0)] == [exp_id]


def test_scope_filter_names_a_bad_value_or_an_unusable_experiment(store):
    unscored = make_experiment(trials=0)
    store.archive_experiment(unscored)
    with pytest.raises(InvalidQueryError, match="'scope'.*<fingerprint>:<metric>"):
        store.query_experiments(scope="dev")
    with pytest.raises(InvalidQueryError, match="no best score"):
        store.query_experiments(scope=unscored.id)
    with pytest.raises(InvalidQueryError, match="no experiment with id"):
        store.query_experiments(scope=new_id("exp"))


def test_a_verdict_is_stored_and_read_back_by_every_backend(store):
    hypothesis = Hypothesis(research_question="Does SIMBA beat the baseline?", status="active")
    experiment = with_verdict(demo_like().replace(hypothesis=hypothesis))
    verdict = experiment.hypothesis.verdict
    assert verdict is not None and verdict.outcome is VerdictOutcome.VALIDATED
    checksum = store.archive_experiment(experiment)
    assert store.get_experiment(experiment.id) == experiment
    assert store.get_experiment(experiment.id).hypothesis.verdict == verdict
    [summary] = store.query_experiments()
    assert summary == summary_of(experiment, sealed=True, checksum=checksum)
    assert summary.verdict is VerdictOutcome.VALIDATED
    assert summary.score_scope == experiment.trials[3].score_scope


@pytest.mark.parametrize(
    ("filters", "named"),
    [
        ({"programme": "qa"}, "'programme'"),
        ({"limit": 0}, "'limit'"),
        ({"limit": "10"}, "'limit'"),
        ({"min_score": "high"}, "'min_score'"),
        ({"max_score": float("nan")}, "'max_score'"),
        ({"created_after": "yesterday"}, "'created_after'"),
        ({"status": "done"}, "'status'"),
        ({"order_by": "name"}, "'order_by'"),
        ({"cursor": "not-a-cursor"}, "'cursor'"),
        ({"tags": []}, "'tags'"),
        ({"program": ""}, "'program'"),
        ({"program": "a\x00b"}, "'program'"),
    ],
)
def test_unknown_filters_and_bad_values_are_named(store, filters, named):
    with pytest.raises(InvalidQueryError, match=named) as caught:
        store.query_experiments(filters)
    if "programme" in filters:
        assert "did you mean 'program'" in str(caught.value) and "order_by" in str(caught.value)
    with pytest.raises(InvalidQueryError):
        store.count_experiments(filters)


HOSTILE = [
    "../../etc/passwd",
    "exp_/..",
    "exp_" + "A" * 25 + "/",
    "'; DROP TABLE x; --",
    "exp_01ARZ3NDEKTSV4RRFFQ69G5FA%",
    "",
    "exp_01arz3ndektsv4rrffq69g5fav",
]


@pytest.mark.parametrize("bad_id", HOSTILE)
def test_hostile_ids_are_refused_and_nothing_is_written(store, bad_id):
    store.archive_experiment(make_experiment())
    with pytest.raises(InvalidIdError):
        store.get_experiment(bad_id)
    with pytest.raises(InvalidIdError):
        store.get_trial(bad_id, new_id("trl"))
    with pytest.raises(InvalidIdError):
        store.record_trial(bad_id, make_trial(new_id("exp"), 0, None))
    with pytest.raises(InvalidIdError):
        store.get_trial(new_id("exp"), bad_id)
    assert store.count_experiments() == 1
    if bad_id:  # as a filter value it is text that matches nothing
        assert store.query_experiments(program=bad_id, hypothesis=bad_id) == []


@pytest.mark.parametrize(
    "text", ["x' OR '1'='1", "%", "_", "qa%", "\\", "'; DELETE FROM dspex_tags; --", "../.."]
)
def test_sql_and_path_text_in_filters_is_only_text(store, text):
    plain = make_experiment()
    hostile = make_experiment(
        program=ProgramInfo(name=text),
        tags=(text,),
        hypothesis=Hypothesis(research_question=f"why {text}?"),
    )
    summaries = [put(store, e) for e in (plain, hostile)]
    for filters in (
        {"program": text},
        {"tags": [text]},
        {"hypothesis": text},
        {"optimizer": text},
        {"program": text + "x"},
    ):
        assert list(store.query_experiments(filters)) == page(Query.parse(filters), summaries)
    assert store.count_experiments() == 2


# -- concurrency --------------------------------------------------------------------------


def test_many_threads_archiving_at_once(store):
    made = [make_experiment(trials=1) for _ in range(24)]
    shared = make_experiment(trials=2)
    errors: list[BaseException] = []

    def work(batch):
        try:
            for experiment in batch:
                store.archive_experiment(experiment)
                store.archive_experiment(shared)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(made[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count_experiments() == 25
    assert sorted(s.id for s in store.query_experiments(limit=100)) == sorted(
        e.id for e in [*made, shared]
    )
    for experiment in [*made, shared]:
        assert store.get_experiment(experiment.id) == experiment
    assert store.verify() == []


# -- non-finite scores ----------------------------------------------------------------------


def _with_best_score(score: float | None, **fields) -> Experiment:
    experiment = make_experiment(trials=0, **fields)
    trial = make_trial(experiment.id, 0, score)
    return experiment.replace(trials=(trial,), best_trial_id=trial.id)


def test_non_finite_best_scores_are_kept_but_rank_and_filter_as_unscored(store):
    made = [_with_best_score(s) for s in (0.5, NAN, INF, -INF, None, 1.0, NAN)]
    summaries = [put(store, experiment) for experiment in made]
    for experiment in made:  # nothing recorded is altered
        stored = store.get_experiment(experiment.id).best_score
        assert stored is experiment.best_score or repr(stored) == repr(experiment.best_score)
    scope = {"scope": scope_key("set-a")}  # score filters compare within one example set
    for filters in ({"min_score": -1e9}, {"max_score": 1e9}, {"order_by": "score"}, {}):
        filters = {**filters, **scope}
        assert _json(store.query_experiments(filters)) == _json(
            page(Query.parse(filters), summaries)
        )
    assert [s.best_score for s in store.query_experiments(min_score=0, **scope)] == [1.0, 0.5]
    ranked = store.query_experiments(order_by="score", **scope)
    assert [s.best_score for s in ranked[:2]] == [1.0, 0.5]
    # non-finite scores rank last, as unscored (an unscored trial has no scope to match)
    assert {repr(s.best_score) for s in ranked[2:]} == {"nan", "inf", "-inf"}
    for limit in (1, 2, 3):  # pages never repeat a row, never stop early
        walked = _walk_with_cursor(store, {"order_by": "score", "limit": limit, **scope})
        assert [s.id for s in walked] == [s.id for s in ranked]
    assert store.count_experiments(min_score=0, **scope) == 2


# -- what JSON cannot carry -----------------------------------------------------------------

CUT_EMOJI = "truncated emoji " + chr(0xD83D)
HUGE = 7 * 10**5000


def test_text_json_cannot_carry_is_stored_as_text_and_reads_back(store):
    experiment = make_experiment(trials=2, metadata={"reply": CUT_EMOJI, chr(0xDC00): HUGE})
    first = experiment.trials[0]
    first = first.replace(metadata={"n": -HUGE, "list": [CUT_EMOJI]})
    experiment = experiment.replace(trials=(first, experiment.trials[1]))
    checksum = store.archive_experiment(experiment)
    stored = store.get_experiment(experiment.id)
    assert checksum == experiment.content_checksum() == stored.content_checksum()
    assert stored.metadata == {"reply": "truncated emoji \\ud83d", "\\udc00": "7" + "0" * 5000}
    assert stored.trials[0].metadata == {"n": "-7" + "0" * 5000, "list": [stored.metadata["reply"]]}
    assert store.get_trial(experiment.id, first.id) == stored.trials[0]
    assert store.verify() == []

    running = make_experiment(status="running", trials=0, metadata={"cut": CUT_EMOJI})
    store.start_experiment(running)
    store.record_trial(running.id, make_trial(running.id, 0, 0.5).replace(metadata={"n": HUGE}))
    reread = store.get_experiment(running.id)
    assert reread.metadata == {"cut": "truncated emoji \\ud83d"}
    assert reread.trials[0].metadata == {"n": "7" + "0" * 5000}


def test_a_field_that_must_be_an_integer_refuses_one_too_long_to_read_back(store):
    experiment = make_experiment(trials=1)
    trial = experiment.trials[0]
    huge = trial.model_copy(
        update={"example_results": (trial.example_results[0].model_copy(update={"tokens": HUGE}),)}
    )
    with pytest.raises(ValidationError, match="tokens"):
        store.archive_experiment(experiment.model_copy(update={"trials": (huge,)}))
    assert store.count_experiments() == 0


# -- hostile queries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "named"),
    [
        ({"offset": 2**63}, "'offset'"),
        ({"offset": MAX_OFFSET + 1}, "'offset'"),
        ({"tags": [f"t{i}" for i in range(MAX_TAGS + 1)]}, f"at most {MAX_TAGS}"),
        ({"tags": [f"t{i}" for i in range(1000)]}, f"at most {MAX_TAGS}"),
        ({"status": ["completed"] * (MAX_LIST_FILTER + 1)}, f"at most {MAX_LIST_FILTER}"),
        ({"status": ["completed", "failed"] * 32_768}, "names 65,536 statuses; at most 100"),
        ({"created_after": "9999-12-31T23:59:59-14:00"}, "'created_after'"),
        ({"created_before": "0001-01-01T00:00:00+14:00"}, "'created_before'"),
    ],
)
def test_values_that_would_overflow_a_backend_are_refused_by_name(store, filters, named):
    with pytest.raises(InvalidQueryError, match=named):
        store.query_experiments(filters)
    with pytest.raises(InvalidQueryError, match=named):
        store.count_experiments(filters)


def test_the_largest_allowed_values_are_answered(store):
    tagged = make_experiment(tags=tuple(f"t{i}" for i in range(MAX_TAGS)))
    other = make_experiment(tags=("t1", "t2"))
    summaries = [put(store, e) for e in (tagged, other)]
    every_tag = {"tags": [f"t{i}" for i in range(MAX_TAGS)]}
    for filters in (every_tag, {"tags": ["t1", "t2", "t3", "t4", "t5"]}, {"tags": ["t1", "t2"]}):
        assert list(store.query_experiments(filters)) == page(Query.parse(filters), summaries)
        assert store.count_experiments(filters) == len(page(Query.parse(filters), summaries))
    assert [s.id for s in store.query_experiments(every_tag)] == [tagged.id]
    assert store.query_experiments(offset=MAX_OFFSET) == []
    assert store.query_experiments(created_after="9999-12-31T23:59:59") == []


def test_an_id_whose_time_is_past_the_year_9999_is_not_an_id(store):
    past = "exp_" + "7" + "Z" * 25  # valid characters; 10889-08-02 by its time
    with pytest.raises(InvalidIdError, match="before the year 10000"):
        store.get_experiment(past)
    with pytest.raises(InvalidIdError):
        store.get_trial(past, new_id("trl"))
    with pytest.raises(InvalidIdError):
        store.get_trial(new_id("exp"), "trl_" + "7" + "Z" * 25)
    with pytest.raises(ExperimentNotFound):
        store.get_experiment(id_at("exp", 253_402_300_799_999, 1))  # the last millisecond


# -- read-only ------------------------------------------------------------------------------


def _listing(url: str) -> dict[str, int] | None:
    """Every file under a file store, or beside a SQLite file, with its size."""
    if url.startswith("file://"):
        root = Path(url.removeprefix("file://"))
    elif url.startswith("sqlite:///"):
        root = Path(url.removeprefix("sqlite:///")).parent
    else:
        return None
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_a_missing_store_opened_read_only_is_an_error_naming_it_and_nothing_is_made(
    backend, store_url_factory
):
    url = store_url_factory()
    if backend == "memory":
        url = f"memory://never-written-{new_id('exp')}"
        assert ResultStore.open(url, read_only=True).count_experiments() == 0
        assert ResultStore.open(url).count_experiments() == 0  # nothing was registered
        return
    if backend == "file":
        url += "/not-there"
    before = _listing(url)
    with pytest.raises(StoreUnavailable, match="no ResultStore at") as caught:
        ResultStore.open(url, read_only=True).connect()
    assert redact_url(url) in str(caught.value)
    assert _listing(url) == before


def test_reading_a_store_read_only_changes_nothing_and_writing_is_refused(
    backend, store_url_factory
):
    url = store_url_factory() if backend != "memory" else f"memory://ro-{new_id('exp')}"
    experiment = make_experiment(trials=2)
    running = make_experiment(status="running", trials=0)
    with ResultStore.open(url, auto_migrate=True) as writer:
        writer.archive_experiment(experiment)
        writer.start_experiment(running)
    before = _listing(url)
    reader = ResultStore.open(url, read_only=True)
    assert reader.get_experiment(experiment.id) == experiment
    assert reader.get_trial(experiment.id, experiment.trials[0].id) == experiment.trials[0]
    assert {s.id for s in reader.query_experiments()} == {experiment.id, running.id}
    assert reader.count_experiments(status="running") == 1
    assert reader.verify() == []
    for write in (
        lambda: reader.archive_experiment(make_experiment()),
        lambda: reader.start_experiment(make_experiment(status="running", trials=0)),
        lambda: reader.record_trial(running.id, make_trial(running.id, 0, 0.1)),
    ):
        with pytest.raises(StoreError, match="read-only"):
            write()
    reader.close()
    assert _listing(url) == before


# -- studies ----------------------------------------------------------------------------------


def make_study(name: str = "simba-vs-mipro", cells: int = 2) -> StudyRecord:
    arms = (
        StudyArm(name="simba", optimizer="dspy.SIMBA", options={"max_steps": 4}, seeding="compile"),
        StudyArm(name="copro", optimizer="dspy.COPRO", seeding="none"),
    )
    made = []
    for seed in range(cells):
        attempt = CellAttempt(
            number=1, experiment_id=new_id("exp"), outcome="sealed", worker="worker-1", pid=7
        )
        result = CellResult(
            experiment_id=attempt.experiment_id,
            score=0.5,
            baseline_score=0.25,
            values=(1.0, 0.0, NAN, 0.5),
            baseline_values=(0.0, 0.0, 1.0, 0.0),
            lm_calls=12,
            cost=None,
            curve=((0.5, 0.25), (1.5, 0.75)),
        )
        made.append(
            StudyCell(arm="simba", seed=seed, status="sealed", attempts=(attempt,), result=result)
        )
    return StudyRecord(
        name=name,
        hypothesis="SIMBA's rules beat COPRO's instructions, émigré 100%_",
        spec={"seeds": list(range(cells)), "arms": {"simba": {"optimizer": "dspy.SIMBA"}}},
        arms=arms,
        seeds=tuple(range(cells)),
        examples=("k1", "k2", "k3", "k4"),
        cells=tuple(made),
    )


def _same(a: StudyRecord, b: StudyRecord) -> bool:
    return a.to_json() == b.to_json()  # NaN values compare equal as JSON, not as floats


def test_a_study_round_trips_and_each_save_is_a_new_revision(store):
    first = store.save_study(make_study())
    assert first.revision == 1
    assert _same(store.get_study(first.name), first)
    cell = first.cells[0].replace(status="failed", result=None)
    second = store.save_study(first.replace(cells=(cell, *first.cells[1:])))
    assert second.revision == 2 and second.updated_at >= first.updated_at
    assert _same(store.get_study(first.name), second)
    [summary] = store.query_studies()
    assert summary == second.summary()
    assert (summary.cells, summary.sealed, summary.failed) == (2, 1, 1)


def test_a_save_from_a_stale_revision_is_refused_and_writes_nothing(store):
    first = store.save_study(make_study())
    second = store.save_study(first.replace(hypothesis="changed once"))
    with pytest.raises(StudyConflict, match="revision 2, read at 1"):
        store.save_study(first.replace(hypothesis="changed from an old copy"))
    with pytest.raises(StudyConflict, match="revision 2, read at 0"):
        store.save_study(make_study())  # a new study under a name that is taken
    assert _same(store.get_study(first.name), second)


def test_concurrent_saves_of_one_revision_store_exactly_one(store):
    base = store.save_study(make_study())
    outcomes: list[str] = []
    lock = threading.Lock()

    def save(i: int) -> None:
        try:
            store.save_study(base.replace(hypothesis=f"writer {i}"))
            result = f"saved {i}"
        except StudyConflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    saved = [o for o in outcomes if o.startswith("saved")]
    assert len(saved) == 1 and outcomes.count("conflict") == 7
    stored = store.get_study(base.name)
    assert stored.revision == 2 and f"saved {stored.hypothesis.split()[-1]}" == saved[0]


def test_studies_are_listed_most_recently_updated_first_a_page_at_a_time(store):
    for name in ("a-study", "b-study", "c-study"):
        store.save_study(make_study(name, cells=1))
    store.save_study(store.get_study("a-study").replace(hypothesis="touched"))
    assert [s.name for s in store.query_studies()] == ["a-study", "c-study", "b-study"]
    assert [s.name for s in store.query_studies(limit=1, offset=1)] == ["c-study"]
    assert store.query_studies(offset=3) == []
    assert store.count_experiments() == 0  # studies are not experiments


@pytest.mark.parametrize("name", ["../etc", "", "a/b", ".hidden", "x" * 101, "a b", None])
def test_a_bad_study_name_is_refused_and_nothing_is_written(store, name):
    with pytest.raises(ValidationError, match="study name"):
        store.get_study(name)
    with pytest.raises(ValidationError, match="name"):
        StudyRecord(name=name)
    assert store.query_studies() == []


def test_a_missing_study_and_bad_paging_are_named(store):
    with pytest.raises(StudyNotFound, match="no study named 'nope'"):
        store.get_study("nope")
    for bad in ({"limit": 0}, {"limit": MAX_LIMIT + 1}, {"offset": -1}, {"limit": True}):
        with pytest.raises(InvalidQueryError, match=next(iter(bad))):
            store.query_studies(**bad)


def test_a_study_is_read_from_a_read_only_store_and_saving_is_refused(backend, store_url_factory):
    url = store_url_factory() if backend != "memory" else f"memory://ro-{new_id('exp')}"
    with ResultStore.open(url, auto_migrate=True) as writer:
        saved = writer.save_study(make_study())
    before = _listing(url)
    reader = ResultStore.open(url, read_only=True)
    assert _same(reader.get_study(saved.name), saved)
    assert reader.query_studies() == [saved.summary()]
    with pytest.raises(StoreError, match="read-only"):
        reader.save_study(saved)
    reader.close()
    assert _listing(url) == before


def test_a_run_restarted_under_the_id_of_a_dead_one_seals_only_its_own_trials(store):
    """A study retries a cell whose worker died under the same experiment id: the dead
    run's header and trials are replaced whole by the seal, nothing of them is kept."""
    final = make_experiment(trials=2)
    dead = [make_trial(final.id, i, 0.1) for i in range(3)]
    store.start_experiment(final.replace(status="running", trials=(), best_trial_id=None))
    for trial in dead:
        store.record_trial(final.id, trial)
    store.start_experiment(final.replace(status="running", trials=(), best_trial_id=None))
    store.record_trial(final.id, final.trials[0])
    checksum = store.archive_experiment(final)
    assert store.get_experiment(final.id) == final
    assert [s.trial_count for s in store.query_experiments()] == [2]
    for trial in dead:
        with pytest.raises(TrialNotFound):
            store.get_trial(final.id, trial.id)
    assert store.verify() == [] and checksum == final.content_checksum()


# -- events: read a page at a time ----------------------------------------------------------

LONG = 2 * PART_EVENTS + 37  # three stored parts, the last one short
PAGES = [
    (0, None),
    (0, 10),
    (5, 1),
    (PART_EVENTS - 3, 7),  # across a part boundary
    (PART_EVENTS, PART_EVENTS),
    (LONG - 2, 10),  # past the end: what there is
    (LONG, 5),
    (LONG + 100, None),
    (3, 0),
]


def long_experiment(status: str = "completed") -> Experiment:
    experiment = make_experiment(trials=2, status=status)
    long = make_trial(experiment.id, 2, 0.9, events=LONG)
    return experiment.replace(trials=(*experiment.trials, long))


def assert_pages_match(store, experiment: Experiment) -> None:
    for trial in experiment.trials:
        assert store.count_events(experiment.id, trial.id) == len(trial.events)
        header = store.get_trial(experiment.id, trial.id, events=False)
        assert header == trial.replace(events=())
        for offset, limit in PAGES:
            stop = None if limit is None else offset + limit
            got = store.read_events(experiment.id, trial.id, offset=offset, limit=limit)
            assert got == list(trial.events[offset:stop]), (offset, limit)


def test_events_are_read_a_page_at_a_time_from_a_sealed_trial(store):
    experiment = long_experiment()
    store.archive_experiment(experiment)
    assert_pages_match(store, experiment)
    assert store.get_trial(experiment.id, experiment.trials[2].id) == experiment.trials[2]


def test_events_are_read_a_page_at_a_time_from_a_running_trial(store):
    experiment = long_experiment(status="running")
    store.start_experiment(experiment.replace(trials=(), best_trial_id=None, summary=None))
    for trial in experiment.trials:
        store.record_trial(experiment.id, trial)
    assert_pages_match(store, experiment)


def test_records_written_before_events_were_indexed_stay_readable(store):
    """A record sealed without the index of its events (as every record before it) is
    read, paged and counted the same way, only by parsing each trial whole."""
    experiment = long_experiment()
    record = encode(experiment, store.backend.part_transform)
    old = dataclasses.replace(record, events=())
    assert store.backend.seal(old).stored
    assert store.get_experiment(experiment.id) == experiment
    assert_pages_match(store, experiment)
    assert store.verify() == []


def test_events_with_text_json_cannot_carry_are_paged_too(store):
    experiment = long_experiment()
    trial = experiment.trials[2]
    odd = trial.events[7].replace(payload={"reply": "cut emoji " + chr(0xD83D)})
    trial = trial.replace(events=(*trial.events[:7], odd, *trial.events[8:]))
    experiment = experiment.replace(trials=(*experiment.trials[:2], trial))
    store.archive_experiment(experiment)
    stored = experiment.representable()
    assert_pages_match(store, stored)
    [event] = store.read_events(experiment.id, trial.id, offset=7, limit=1)
    assert event.payload == {"reply": "cut emoji \\ud83d"}


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_a_bad_offset_or_limit_is_named(store, bad):
    experiment = make_experiment()
    store.archive_experiment(experiment)
    trial_id = experiment.trials[0].id
    with pytest.raises(InvalidQueryError, match="offset"):
        store.read_events(experiment.id, trial_id, offset=bad)
    with pytest.raises(InvalidQueryError, match="limit"):
        store.read_events(experiment.id, trial_id, limit=bad)


def test_events_of_a_missing_trial_or_experiment_are_not_found(store):
    experiment = make_experiment()
    store.archive_experiment(experiment)
    missing_trial, missing_experiment = new_id("trl"), new_id("exp")
    for read in (store.read_events, store.count_events):
        with pytest.raises(TrialNotFound, match=missing_trial):
            read(experiment.id, missing_trial)
        with pytest.raises(ExperimentNotFound, match=missing_experiment):
            read(missing_experiment, missing_trial)
    with pytest.raises(TrialNotFound):
        store.get_trial(experiment.id, missing_trial, events=False)


# -- events appended while a trial runs ------------------------------------------------------


def started(store, experiment: Experiment) -> None:
    store.start_experiment(
        experiment.replace(status="running", trials=(), best_trial_id=None, summary=None)
    )


def append_in_chunks(store, experiment_id: str, trial: Trial, size: int = 97) -> None:
    """Append ``trial``'s events in chunks, each also replayed, some overlapping."""
    events = trial.events
    for first in range(0, len(events), size):
        store.append_events(experiment_id, trial.id, first, events[first : first + size])
        store.append_events(experiment_id, trial.id, first, events[first : first + size])
        if first >= 5:  # overlapping: what is stored is skipped
            store.append_events(experiment_id, trial.id, first - 5, events[first - 5 : first + 3])


def test_appended_events_make_the_trial_recorded_and_sealed_without_them(store):
    experiment = long_experiment()
    started(store, experiment)
    long = experiment.trials[2]
    append_in_chunks(store, experiment.id, long)
    assert store.count_events(experiment.id, long.id) == LONG
    assert store.read_events(experiment.id, long.id, offset=PART_EVENTS - 2, limit=4) == list(
        long.events[PART_EVENTS - 2 : PART_EVENTS + 2]
    )
    with pytest.raises(TrialNotFound):  # events, but the trial is not recorded yet
        store.get_trial(experiment.id, long.id)
    bare = long.replace(events=())
    for trial in experiment.trials[:2]:
        store.record_trial(experiment.id, trial)
    store.record_trial(experiment.id, bare)
    assert_pages_match(store, experiment)
    assert store.get_trial(experiment.id, long.id) == long
    assert store.get_experiment(experiment.id).trials == experiment.trials
    sent = experiment.replace(trials=(*experiment.trials[:2], bare))
    checksum = store.archive_experiment(sent)
    assert checksum == experiment.content_checksum()
    assert store.get_experiment(experiment.id) == experiment
    assert_pages_match(store, experiment)
    assert store.verify() == []
    assert store.archive_experiment(sent) == checksum  # the same again: nothing changes
    assert store.archive_experiment(experiment) == checksum


def test_a_trial_archived_without_events_and_never_recorded_gets_its_appended_events(store):
    experiment = long_experiment()
    started(store, experiment)
    for trial in experiment.trials:
        append_in_chunks(store, experiment.id, trial, size=PART_EVENTS + 1)
    bare = tuple(t.replace(events=()) for t in experiment.trials)
    assert store.archive_experiment(experiment.replace(trials=bare)) == (
        experiment.content_checksum()
    )
    assert store.get_experiment(experiment.id) == experiment


def test_a_gap_in_appended_events_is_refused_and_nothing_is_stored(store):
    experiment = make_experiment(trials=0)
    started(store, experiment)
    trial = make_trial(experiment.id, 0, 0.5, events=10)
    store.append_events(experiment.id, trial.id, 0, trial.events[:4])
    with pytest.raises(ValidationError, match=r"4\.\.5"):
        store.append_events(experiment.id, trial.id, 6, trial.events[6:])
    assert store.count_events(experiment.id, trial.id) == 4
    store.append_events(experiment.id, trial.id, 4, trial.events[4:])
    assert store.read_events(experiment.id, trial.id) == list(trial.events)


def test_appending_to_a_sealed_or_missing_experiment_or_another_trial_is_refused(store):
    experiment = make_experiment()
    store.archive_experiment(experiment)
    trial = experiment.trials[0]
    with pytest.raises(ImmutableRecordError, match=experiment.id):
        store.append_events(experiment.id, trial.id, 0, trial.events)
    missing = new_id("exp")
    with pytest.raises(ExperimentNotFound, match=missing):
        store.append_events(missing, trial.id, 0, trial.events)
    other = new_id("trl")
    with pytest.raises(ValidationError, match=other):
        store.append_events(experiment.id, other, 0, trial.events)
    with pytest.raises(ValidationError, match="first_seq"):
        store.append_events(experiment.id, trial.id, -1, trial.events)
    assert store.get_experiment(experiment.id) == experiment


def test_events_appended_as_serialized_parts_are_stored_as_they_are(store):
    experiment = long_experiment()
    started(store, experiment)
    long = experiment.trials[2]
    parts = [encode_parts(i, long.events[i : i + 200])[0] for i in range(0, LONG, 200)]
    assert len(parts) == 6
    store.append_event_parts(experiment.id, long.id, parts[:2])
    store.append_event_parts(experiment.id, long.id, parts[:2])  # a replay: skipped
    assert store.count_events(experiment.id, long.id) == parts[1].stop
    # a part the store holds in part: cut to its new events
    overlap = encode_parts(parts[1].stop - 3, long.events[parts[1].stop - 3 : parts[2].stop])
    store.append_event_parts(experiment.id, long.id, overlap)
    store.append_event_parts(experiment.id, long.id, parts[3:])
    assert store.read_events(experiment.id, long.id) == list(long.events)
    for trial in experiment.trials[:2]:
        store.record_trial(experiment.id, trial)
    bare = experiment.replace(trials=(*experiment.trials[:2], long.replace(events=())))
    assert store.archive_experiment(bare) == experiment.content_checksum()
    assert store.get_experiment(experiment.id) == experiment
    assert store.verify() == []


def test_serialized_parts_with_a_gap_or_out_of_order_are_refused(store):
    experiment = make_experiment(trials=0)
    started(store, experiment)
    trial = make_trial(experiment.id, 0, 0.5, events=10)
    first, second, third = (encode_parts(i, trial.events[i : i + 3])[0] for i in (0, 3, 6))
    with pytest.raises(ValidationError, match=r"0\.\.2"):
        store.append_event_parts(experiment.id, trial.id, [second])
    with pytest.raises(ValidationError, match="in order"):
        store.append_event_parts(experiment.id, trial.id, [first, third])
    with pytest.raises(TrialNotFound):  # nothing was stored
        store.count_events(experiment.id, trial.id)
    with pytest.raises(ValidationError, match="encode_parts"):
        store.append_event_parts(experiment.id, trial.id, [EventPart(0, 0, b"")])
    with pytest.raises(ValidationError, match="dspex.store.EventPart"):
        store.append_event_parts(experiment.id, trial.id, [b"not a part"])
    store.append_event_parts(experiment.id, trial.id, [first, second, third])
    store.append_events(experiment.id, trial.id, 9, trial.events[9:])
    assert store.read_events(experiment.id, trial.id) == list(trial.events)
