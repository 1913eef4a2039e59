"""Records round-trip through JSON with no loss and refuse malformed input clearly."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings

from dspex import (
    Experiment,
    ExperimentStatus,
    Hypothesis,
    ProgramInfo,
    TraceEvent,
    Trial,
    ValidationError,
    new_id,
    utc_now,
)
from dspex.model import SCHEMA_VERSION

from .strategies import experiments, hypotheses


@settings(max_examples=60, deadline=None)
@given(experiments())
def test_experiment_round_trips_through_json(experiment):
    restored = Experiment.from_json(experiment.to_json())
    assert restored == experiment
    assert restored.to_json() == experiment.to_json()
    assert restored.content_checksum() == experiment.content_checksum()


@settings(max_examples=60, deadline=None)
@given(experiments())
def test_experiment_round_trips_through_plain_dicts(experiment):
    assert Experiment.from_dict(experiment.to_dict()) == experiment


@given(hypotheses)
def test_hypothesis_round_trips(hypothesis):
    assert Hypothesis.from_json(hypothesis.to_json()) == hypothesis


def test_non_finite_floats_survive_a_round_trip():
    exp_id = new_id("exp")
    trial = Trial(
        experiment_id=exp_id,
        index=0,
        started_at=utc_now(),
        score=float("nan"),
        metadata={"x": float("inf")},
    )
    restored = Trial.from_json(trial.to_json())
    assert restored.score != restored.score  # NaN
    assert restored.metadata["x"] == float("inf")


def test_records_are_immutable():
    exp = Experiment(name="e", program=ProgramInfo(name="qa"))
    with pytest.raises(Exception, match="frozen"):
        exp.name = "other"  # type: ignore[misc]
    changed = exp.replace(name="other")
    assert (exp.name, changed.name) == ("e", "other")


def test_schema_version_is_stored_and_newer_versions_are_refused():
    exp = Experiment(name="e", program=ProgramInfo(name="qa"))
    assert exp.to_dict()["schema_version"] == SCHEMA_VERSION
    data = exp.to_dict() | {"schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ValidationError, match="newer than this dspex understands"):
        Experiment.from_dict(data)


@pytest.mark.parametrize(
    "bad_id",
    [
        "exp_simba_run_123",
        "../../etc/passwd",
        "exp_01/..",
        "",
        "trl_01JD0000000000000000000000",
        "exp_01jd0000000000000000000000",
        "exp_01JD0000000000000000000000'; DROP TABLE x;--",
    ],
)
def test_malformed_ids_are_refused_naming_the_field(bad_id):
    with pytest.raises(ValidationError) as info:
        Experiment(id=bad_id, name="e", program=ProgramInfo(name="qa"))
    assert "Experiment.id" in str(info.value)
    assert "not a dspex id" in str(info.value)


def test_naive_timestamps_are_refused():
    with pytest.raises(ValidationError, match=r"Trial.started_at = .*timezone-aware"):
        Trial(experiment_id=new_id("exp"), index=0, started_at=datetime(2026, 1, 1))


def test_timestamps_are_normalized_to_utc_with_microseconds():
    local = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    trial = Trial(experiment_id=new_id("exp"), index=0, started_at=local)
    assert trial.started_at.utcoffset() == timedelta(0)
    assert trial.started_at.hour == 10 and trial.started_at.microsecond == 123456
    assert trial.to_dict()["started_at"].endswith("10:00:00.123456Z")


def test_bad_enum_value_names_field_value_and_allowed_values():
    with pytest.raises(ValidationError) as info:
        Experiment(name="e", program=ProgramInfo(name="qa"), status="done")
    message = str(info.value)
    assert "Experiment.status = 'done'" in message
    assert "'designed', 'running', 'completed', 'failed' or 'interrupted'" in message


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationError, match="Hypothesis.question"):
        Hypothesis(research_question="q", question="typo")


def test_payload_must_be_json():
    with pytest.raises(ValidationError, match="TraceEvent.payload"):
        TraceEvent(
            trial_id=new_id("trl"),
            sequence=0,
            timestamp=utc_now(),
            monotonic_ns=time.monotonic_ns(),
            source="execution",
            kind="lm_call",
            pid=os.getpid(),
            worker="w",
            payload={"obj": object()},
        )


def test_trial_consistency_checks():
    exp_id = new_id("exp")
    with pytest.raises(ValidationError, match="a failed trial needs an error"):
        Trial(experiment_id=exp_id, index=0, started_at=utc_now(), status="failed")
    other = TraceEvent(
        trial_id=new_id("trl"),
        sequence=0,
        timestamp=utc_now(),
        monotonic_ns=1,
        source="execution",
        kind="log",
        pid=1,
        worker="w",
    )
    with pytest.raises(ValidationError, match="belongs to trial"):
        Trial(experiment_id=exp_id, index=0, started_at=utc_now(), events=(other,))


def test_experiment_refuses_foreign_or_duplicate_trials_and_unknown_best():
    exp_id = new_id("exp")
    trial = Trial(experiment_id=exp_id, index=0, started_at=utc_now())
    with pytest.raises(ValidationError, match="appears twice"):
        Experiment(id=exp_id, name="e", program=ProgramInfo(name="qa"), trials=(trial, trial))
    with pytest.raises(ValidationError, match="belongs to experiment"):
        Experiment(name="e", program=ProgramInfo(name="qa"), trials=(trial,))
    with pytest.raises(ValidationError, match="best_trial_id"):
        Experiment(id=exp_id, name="e", program=ProgramInfo(name="qa"), best_trial_id=new_id("trl"))


def test_final_statuses():
    assert {s for s in ExperimentStatus if s.is_final} == {
        ExperimentStatus.COMPLETED,
        ExperimentStatus.FAILED,
        ExperimentStatus.INTERRUPTED,
    }


def test_a_bad_event_inside_a_parsed_trial_is_named_by_its_full_path_once():
    exp_id, trial_id = new_id("exp"), new_id("trl")
    event = TraceEvent(
        trial_id=trial_id, sequence=0, timestamp=utc_now(), monotonic_ns=1,
        source="execution", kind="log", pid=1, worker="w",
    )  # fmt: skip
    trial = Trial(id=trial_id, experiment_id=exp_id, index=0, started_at=utc_now(),
                  events=(event,))  # fmt: skip
    data = trial.to_dict()
    data["events"][0].update(sequence=-1, id="evt_bad")
    for parse in (Trial.from_dict, lambda d: Trial.from_json(json.dumps(d))):
        with pytest.raises(ValidationError) as info:
            parse(data)
        lines = str(info.value).splitlines()
        assert lines[0] == "invalid Trial:"
        assert [line.split(" = ")[0].strip() for line in lines[1:]] == [
            "Trial.events.0.id",
            "Trial.events.0.sequence",
        ]
        assert "not a dspex id" in lines[1] and "greater than or equal to 0" in lines[2]
