"""The study runner, cells in this process (the inline engine): every cell one linked
experiment, resume without duplicates, adoption of cells a dead runner left, one runner at
a time, Ctrl-C, and LM calls recorded against the LM's own count."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest

from dspex import ExperimentStatus, ResultStore, StudyError, new_id, utc_now
from dspex.model import Experiment, ProgramInfo, VerdictOutcome
from dspex.model.study import AttemptOutcome, CellAttempt, CellStatus, StudyOwner, StudyStatus
from dspex.study import Study
from dspex.study.cell import study_tag
from dspex.study.engines import InlineEngine
from dspex.study.runner import StudyRunner, new_record
from tests.store.test_conformance import make_trial
from tests.study.conftest import spec_data
from tests.study.lms import calls_answered


def _run(study: Study, store: ResultStore, **kw):
    return study.run(store=store, engine="inline", **kw)


def _experiments(store: ResultStore, name: str):
    return [store.get_experiment(s.id) for s in store.query_experiments(tags=[study_tag(name)])]


def test_every_cell_is_one_sealed_experiment_linked_once(study_dir):
    store = ResultStore.open("memory://")
    study = Study(spec_data(seeds=(0, 1)))
    record = _run(study, store)
    assert record.status is StudyStatus.COMPLETED and len(record.cells) == 6
    experiments = {e.id: e for e in _experiments(store, study.name)}
    assert sorted(experiments) == sorted(c.experiment_id for c in record.cells)
    for cell in record.cells:
        experiment = experiments[cell.experiment_id]
        assert experiment.status is ExperimentStatus.COMPLETED
        link = experiment.metadata["study"]
        assert (link["name"], link["arm"], link["seed"]) == (study.name, cell.arm, cell.seed)
        assert [a.outcome for a in cell.attempts] == [AttemptOutcome.SEALED]
        names = [t.name for t in experiment.trials if t.metadata.get("role") == "evaluation"]
        assert names == ["baseline", "optimized"]
        assert cell.result is not None and cell.result.score == experiment.trials[-1].score
        assert len(cell.result.values) == 10 and cell.result.curve
    recorded = sum(c.result.lm_calls for c in record.cells if c.result)
    assert recorded == calls_answered(study_dir) > 0
    assert record.verdict is not None and record.verdict.treatment == "mipro"
    assert record.verdict.comparison.treatment_seeds == 2
    assert study.verdict == record.verdict and study.results().rows()[0]["study"] == study.name


def test_running_again_keeps_sealed_cells_and_runs_only_new_ones(study_dir):
    store = ResultStore.open("memory://")
    first = _run(Study(spec_data(seeds=(0, 1))), store)
    answered = calls_answered(study_dir)
    again = _run(Study(spec_data(seeds=(0, 1))), store)
    assert calls_answered(study_dir) == answered  # nothing ran
    assert [c.experiment_id for c in again.cells] == [c.experiment_id for c in first.cells]
    grown = _run(Study(spec_data(seeds=(0, 1, 2))), store)
    assert len(grown.cells) == 9 and grown.status is StudyStatus.COMPLETED
    kept = {c.key: c.experiment_id for c in first.cells}
    assert all(kept.get(c.key, c.experiment_id) == c.experiment_id for c in grown.cells)
    assert len(_experiments(store, "three-arms")) == 9
    assert grown.verdict is not None and grown.verdict.comparison.control_seeds == 3


def test_a_cell_its_runner_left_running_is_retried_under_the_same_id_without_duplicates(
    study_dir,
):
    store = ResultStore.open("memory://")
    study = Study(spec_data(seeds=(0,)))
    # what a runner killed mid-cell leaves: the cell running, its experiment half-recorded
    dead = new_id("exp")
    store.start_experiment(
        Experiment(
            id=dead,
            name="half",
            program=ProgramInfo(name="qa"),
            tags=(study_tag(study.name),),
            status="running",
        )
    )
    orphans = [make_trial(dead, i, 0.1) for i in range(3)]
    for trial in orphans:
        store.record_trial(dead, trial)
    planned = new_record(study.spec)
    left = planned.cell("simba", 0).replace(
        status=CellStatus.RUNNING, attempts=(CellAttempt(number=1, experiment_id=dead),)
    )
    owner = StudyOwner(host=socket.gethostname(), pid=_dead_pid(), token="gone")
    store.save_study(
        planned.replace(
            cells=tuple(left if c.key == left.key else c for c in planned.cells),
            status=StudyStatus.RUNNING,
            owner=owner,
        )
    )
    record = _run(Study(spec_data(seeds=(0,))), store)
    cell = record.cell("simba", 0)
    assert [a.outcome for a in cell.attempts] == [AttemptOutcome.LOST, AttemptOutcome.SEALED]
    assert "its runner" in cell.attempts[0].cause and str(owner.pid) in cell.attempts[0].cause
    assert cell.attempts[1].experiment_id == dead and cell.status is CellStatus.SEALED
    sealed = store.get_experiment(dead)
    assert sealed.status is ExperimentStatus.COMPLETED
    assert not {t.id for t in orphans} & {t.id for t in sealed.trials}
    assert len(_experiments(store, study.name)) == 3


def test_a_cell_sealed_after_its_runner_died_is_adopted_not_run_again(study_dir):
    store = ResultStore.open("memory://")
    study = Study(spec_data(seeds=(0,)))
    done = _run(study, store)
    cell = done.cell("rs", 0)
    running = cell.replace(
        status=CellStatus.RUNNING,
        result=None,
        attempts=(cell.attempts[0].replace(outcome="running"),),
    )
    stored = store.get_study(study.name)
    store.save_study(
        stored.replace(
            cells=tuple(running if c.key == cell.key else c for c in stored.cells),
            owner=StudyOwner(
                host="elsewhere", pid=1, token="t", heartbeat_at=utc_now() - timedelta(minutes=5)
            ),
        )
    )
    answered = calls_answered(study_dir)
    record = _run(Study(spec_data(seeds=(0,))), store)
    adopted = record.cell("rs", 0)
    assert calls_answered(study_dir) == answered
    assert adopted.status is CellStatus.SEALED and adopted.result == cell.result
    assert [a.outcome for a in adopted.attempts] == [AttemptOutcome.SEALED]


def test_a_study_another_live_runner_holds_is_refused(study_dir):
    store = ResultStore.open("memory://")
    study = Study(spec_data(seeds=(0,)))
    _run(study, store)
    stored = store.get_study(study.name)
    store.save_study(stored.replace(owner=StudyOwner(host="node-7", pid=4242, token="t")))
    with pytest.raises(StudyError, match=r"being run by node-7 \(pid 4242"):
        _run(Study(spec_data(seeds=(0,))), store)
    stale = utc_now() - timedelta(minutes=5)
    stored = store.get_study(study.name)
    store.save_study(stored.replace(owner=stored.owner.replace(heartbeat_at=stale)))
    assert _run(Study(spec_data(seeds=(0,))), store).status is StudyStatus.COMPLETED


def test_a_spec_changed_under_the_same_name_is_refused_naming_every_change(study_dir):
    store = ResultStore.open("memory://")
    _run(Study(spec_data(seeds=(0,))), store)
    changed = spec_data(seeds=(0,))
    changed["arms"]["simba"]["options"]["max_steps"] = 2
    changed["metric"] = "dspex.offline:exact_match_with_feedback"
    del changed["arms"]["rs"]
    changed["control"] = "simba"
    with pytest.raises(StudyError) as caught:
        _run(Study(changed), store)
    message = str(caught.value)
    assert "arm simba: options {" in message and "'max_steps': 1" in message
    assert "metric: 'dspex.offline:exact_match' -> 'dspex.offline:exact_match_with_feedback'" in (
        message
    )
    assert "arm rs is no longer in the spec" in message and "give the changed one" in message


def test_a_failed_cell_keeps_its_cause_and_the_next_run_retries_it(study_dir):
    store = ResultStore.open("memory://")
    data = spec_data(seeds=(0,))
    data["arms"] = {"rs": data["arms"]["rs"], "mipro": data["arms"]["mipro"]}
    data["data"] = "tests.study.lms:flaky_data"
    study = Study(data)
    (study_dir / "fail-once").touch()  # after the spec was checked: the first cell fails
    record = _run(study, store)
    assert record.status is StudyStatus.INCOMPLETE
    failed = [c for c in record.cells if c.status is CellStatus.FAILED]
    assert len(failed) == 1 and failed[0].attempts[0].outcome is AttemptOutcome.FAILED
    assert failed[0].attempts[0].cause == "RuntimeError: the data source is unreachable (once)"
    assert record.verdict is None  # one of the compared arms has no sealed cell
    again = _run(Study(data), store)
    cell = again.cell(*failed[0].key)
    assert again.status is StudyStatus.COMPLETED and len(cell.attempts) == 2
    assert cell.attempts[0].experiment_id != cell.attempts[1].experiment_id


def test_ctrl_c_stops_the_study_keeping_finished_cells_and_a_new_run_resumes(study_dir):
    store = ResultStore.open("memory://")
    study = Study(spec_data(seeds=(0, 1)))

    def stop_after_two(snapshot):
        if snapshot.sealed >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(study, store, on_progress=stop_after_two)
    stopped = store.get_study(study.name)
    assert stopped.status is StudyStatus.INTERRUPTED and stopped.owner is None
    assert sum(c.status is CellStatus.SEALED for c in stopped.cells) == 2
    answered = calls_answered(study_dir)
    resumed = _run(Study(spec_data(seeds=(0, 1))), store)
    assert resumed.status is StudyStatus.COMPLETED
    assert calls_answered(study_dir) > answered
    assert len(_experiments(store, study.name)) == 6


def test_a_runner_whose_study_was_saved_by_another_stops(study_dir):
    store = ResultStore.open("memory://")
    study = Study(spec_data(seeds=(0, 1)))

    def intrude(snapshot):  # another runner takes the study over
        if snapshot.sealed == 1:
            taken = store.get_study(study.name)
            store.save_study(taken.replace(owner=StudyOwner(host="b", pid=1, token="other")))

    with pytest.raises(StudyError, match="changed by another runner"):
        _run(study, store, on_progress=intrude)


def test_the_verdict_is_stored_with_the_study_at_the_configured_alpha(study_dir):
    store = ResultStore.open("memory://")
    record = _run(Study(spec_data(seeds=(0, 1))), store, alpha=0.2)
    verdict = store.get_study(record.name).verdict
    assert verdict is not None and verdict.alpha == 0.2
    assert verdict.outcome in set(VerdictOutcome) and verdict.reason.endswith(".")


def _dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


class _Unreachable(InlineEngine):
    def start(self) -> None:
        raise StudyError("cannot connect to Ray at ray://nowhere:10001: ConnectionError")


def test_a_runner_that_cannot_start_its_engine_leaves_a_stopped_study_not_a_running_one(
    study_dir,
):
    store = ResultStore.open("memory://")
    study = Study(spec_data(seeds=(0,)))
    with pytest.raises(StudyError, match="cannot connect to Ray"):
        StudyRunner(study.spec, store, engine=_Unreachable()).run()
    stored = store.get_study(study.name)
    assert stored.status is StudyStatus.INTERRUPTED and stored.owner is None
    assert _run(Study(spec_data(seeds=(0,))), store).status is StudyStatus.COMPLETED
