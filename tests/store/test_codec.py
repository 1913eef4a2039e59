"""The stored form of a record is exactly its JSON, and each trial is found in it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dspex import Experiment, ExperimentStatus, Hypothesis, ProgramInfo
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
