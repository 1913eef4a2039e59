"""The stored form of a record is exactly its JSON, and each trial is found in it."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dspex import Experiment, ExperimentStatus, Hypothesis, ProgramInfo, TraceEvent, Trial, new_id
from dspex.store import codec
from dspex.store.codec import encode, splice
from tests.model.strategies import experiments


def _check(experiment: Experiment) -> None:
    record = encode(experiment)
    assert record.body == experiment.to_json_bytes()
    assert record.checksum == experiment.content_checksum()
    for (trial_id, start, end), trial in zip(record.spans, experiment.trials, strict=True):
        assert (trial_id, record.body[start:end]) == (trial.id, trial.to_json_bytes())
    parts = [data for _, data in record.trials]
    assert splice(record.header, record.at, parts) == record.body
    assert b"".join(record.chunks()) == record.body


@settings(max_examples=60, deadline=None)
@given(experiments(status=ExperimentStatus.COMPLETED))
def test_encoding_is_the_records_json_with_trials_located(experiment):
    _check(experiment)


@settings(max_examples=10, deadline=None)
@given(experiments(status=ExperimentStatus.COMPLETED), st.sampled_from(["metadata", "hyp"]))
def test_metadata_that_looks_like_an_empty_trial_list_does_not_confuse_it(experiment, where):
    decoy = {"trials": []}
    if where == "metadata":
        experiment = experiment.replace(metadata=decoy)
    else:
        experiment = experiment.replace(
            hypothesis=Hypothesis(research_question="q", metadata=decoy)
        )
    _check(experiment)
    _check(Experiment(name="n", program=ProgramInfo(name="p"), metadata=decoy))


def _large(trials: int, metadata: dict | None = None) -> Experiment:
    """About 300 KB of JSON per trial, so that encoding goes through its worker threads."""
    exp_id, start = new_id("exp"), datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for index in range(trials):
        trial_id = new_id("trl")
        event = TraceEvent(
            trial_id=trial_id, sequence=0, timestamp=start, monotonic_ns=0,
            source="execution", kind="lm_call", pid=1, worker="main",
            payload={"response": f"answer {index} " * 30_000},
        )  # fmt: skip
        made.append(Trial(id=trial_id, experiment_id=exp_id, index=index, started_at=start,
                          events=(event,)))  # fmt: skip
    return Experiment(id=exp_id, name="big", program=ProgramInfo(name="qa"),
                      status="completed", trials=tuple(made), metadata=metadata or {})  # fmt: skip


def test_a_large_record_is_hashed_and_transformed_on_worker_threads_in_order():
    for metadata in (None, {"trials": []}):  # the header's trials place known, or located
        experiment = _large(14, metadata)
        assert len(experiment.to_json_bytes()) > 3 * codec._BATCH_BYTES
        _check(experiment)
        record = encode(experiment, transform=zlib.compress)
        assert record.checksum == experiment.content_checksum()
        assert record.body == experiment.to_json_bytes()
        assert record.stored is not None
        assert [zlib.decompress(s) for s in record.stored] == [d for _, d in record.trials]
        assert encode(experiment).stored is None


def test_a_failing_transform_fails_the_encoding():
    def broken(data: bytes) -> bytes:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        encode(_large(8), transform=broken)
    small = Experiment(name="n", program=ProgramInfo(name="p"), status="completed")
    assert encode(small, transform=broken).stored == ()
