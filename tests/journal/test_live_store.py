"""A running trial can be read from the store while it grows (live views)."""

from __future__ import annotations

import time

import dspy

import dspex
from dspex.errors import TrialNotFound
from dspex.offline import offline_lm
from dspex.store import ResultStore


def _count(store: ResultStore, experiment_id: str, trial_id: str) -> int:
    try:
        return store.count_events(experiment_id, trial_id)
    except TrialNotFound:  # nothing appended yet
        return 0


def test_a_running_trial_of_direct_calls_is_in_the_store_within_seconds(tmp_path, spool_dir):
    store = ResultStore.open(f"file://{tmp_path / 'store'}")
    predict = dspy.Predict("question -> answer")
    lm = offline_lm()
    with dspy.context(lm=lm), dspex.experiment("live", store=store) as exp:
        for i in range(40):
            predict(question=f"What is {i} + 2?")
        (trial_id,) = exp.journal.open_trial_ids()
        deadline = time.monotonic() + 30
        while _count(store, exp.id, trial_id) < 120 and time.monotonic() < deadline:
            time.sleep(0.2)
        live = store.read_events(exp.id, trial_id)
        assert len(live) == 120  # 3 events per call: module start, LM call, module end
        assert [e.sequence for e in live] == list(range(120))
        assert sum(e.kind.value == "lm_call" for e in live) == lm.engine.calls == 40
        assert exp.trials == []  # nothing finished yet: the events are not held here
        for i in range(10):
            predict(question=f"What is {i} + 3?")
    sealed = store.get_experiment(exp.id).trials[0]
    assert sealed.id == trial_id
    assert [e.id for e in sealed.events[:120]] == [e.id for e in live]  # kept, not redone
    assert len(sealed.events) == 150 and len({e.id for e in sealed.events}) == 150
