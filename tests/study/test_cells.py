"""One cell: the arguments each optimizer is built and compiled with, what a sealed cell
measured (values in the study's order, LM calls, the best-so-far curve), the live count
of a running cell's LM calls, and a cell stopped at its time limit on the local engine."""

from __future__ import annotations

import pytest

import dspex
from dspex import ResultStore
from dspex.model import example_key
from dspex.model.study import AttemptOutcome, CellStatus, Seeding, StudyStatus
from dspex.study import Study, build_spec
from dspex.study.cell import CellTask, cell_result_of, optimizer_arguments, run_cell
from dspex.study.runner import _LiveCounter
from dspex.study.spec import ArmSpec
from tests.study.conftest import spec_data
from tests.study.lms import LATENCY, calls_answered


def test_each_optimizer_gets_the_seed_metric_data_and_references_where_it_takes_them():
    import dspy

    lm, metric, train, val = object(), object(), ["t"], ["v"]
    gepa = ArmSpec("gepa", "dspy.GEPA", options={"reflection_lm": "@lm", "auto": "light"},
                   seeding=Seeding.CONSTRUCTOR)  # fmt: skip
    init, compiled = optimizer_arguments(gepa, dspy.GEPA, 7, lm=lm, metric=metric,
                                         trainset=train, valset=val)  # fmt: skip
    assert init == {"reflection_lm": lm, "auto": "light", "seed": 7, "metric": metric}
    assert compiled == {"trainset": train, "valset": val}
    simba = ArmSpec("s", "dspy.SIMBA", compile={}, seeding=Seeding.COMPILE)
    init, compiled = optimizer_arguments(simba, dspy.SIMBA, 3, lm=lm, metric=metric,
                                         trainset=train, valset=val)  # fmt: skip
    assert init == {"metric": metric} and compiled == {"trainset": train, "seed": 3}  # no valset
    mipro = ArmSpec("m", "dspy.MIPROv2", options={"auto": "@none"}, seeding=Seeding.CONSTRUCTOR)
    init, _ = optimizer_arguments(mipro, dspy.MIPROv2, 0, lm=lm, metric=metric,
                                  trainset=train, valset=None)  # fmt: skip
    assert init["auto"] is None and init["seed"] == 0
    knn = ArmSpec("k", "dspy.KNNFewShot", options={"k": 2})
    init, compiled = optimizer_arguments(knn, dspy.KNNFewShot, 0, lm=lm, metric=metric,
                                         trainset=train, valset=None)  # fmt: skip
    assert init == {"k": 2, "trainset": train} and compiled == {}


def test_a_cell_reports_values_in_the_study_order_calls_and_its_curve(study_dir):
    spec = build_spec(spec_data(seeds=(0,)))
    assert spec.evaluation is not None
    keys = spec.evaluation.keys
    task = CellTask(
        study="cells", hypothesis="h", arm=spec.arm("rs"), seed=0, attempt=1,
        experiment_id=dspex.new_id("exp"), store_url=None, program=spec.program,
        data=spec.data, metric=spec.metric, lm=spec.lm, examples=keys,
    )  # fmt: skip
    report = run_cell(task)
    experiment = dspex.Experiment.from_json(report.record or b"")
    result = report.result
    assert result.experiment_id == task.experiment_id == experiment.id
    assert result.lm_calls == calls_answered(study_dir) > 0  # every call the LM answered
    assert result.tokens > 0 and result.cost is None  # the offline LM reports tokens, no price
    final = [t for t in experiment.trials if t.name == "optimized"][0]
    by_key = {example_key(r.inputs, r.labels): r.metrics["exact_match"]
              for r in final.example_results}  # fmt: skip
    assert result.values == tuple(by_key[k] for k in keys)
    assert result.score == pytest.approx(sum(result.values) / len(keys))
    times = [t for t, _ in result.curve]
    bests = [b for _, b in result.curve]
    assert times == sorted(times) and bests == sorted(bests) and result.curve_scope
    assert report.seconds > 0 and result.wall_s > 0
    reversed_keys = tuple(reversed(keys))  # another order of the same examples
    assert cell_result_of(experiment, reversed_keys).values == tuple(reversed(result.values))
    with pytest.raises(dspex.StudyError, match="has no result for example"):
        cell_result_of(experiment, ("0000000000000000", *keys[1:]))


def test_the_live_count_reads_running_cells_lm_calls_from_the_store(tmp_path, study_dir):
    url = f"file://{tmp_path / 'store'}"
    store = ResultStore.open(url)
    from tests.store.test_conformance import make_trial

    running = dspex.Experiment(name="r", program=dspex.ProgramInfo(name="qa"),
                               tags=("study:live",), status="running")  # fmt: skip
    store.start_experiment(running)
    store.record_trial(running.id, make_trial(running.id, 0, 0.5, events=3))
    counter = _LiveCounter(store, "study:live")
    assert counter.count([running.id]) == (3, 0.0)
    assert counter.count([]) == (0, 0)


@pytest.mark.slow
def test_a_cell_past_its_time_limit_is_stopped_retried_and_then_failed(study_dir, monkeypatch):
    monkeypatch.setenv(LATENCY, "0.3")
    data = spec_data(name="slow", seeds=(0,))
    data["arms"] = {"rs": data["arms"]["rs"]}
    data.pop("control")
    data.pop("treatment")
    record = Study(data).run(store=ResultStore.open("memory://"), engine="local",
                             max_concurrent=1, timeout=4.0, retries=1)  # fmt: skip
    (cell,) = record.cells
    assert record.status is StudyStatus.INCOMPLETE and cell.status is CellStatus.FAILED
    assert [a.outcome for a in cell.attempts] == [AttemptOutcome.TIMEOUT] * 2
    assert "for more than 4 s" in cell.attempts[0].cause
    assert cell.attempts[0].experiment_id == cell.attempts[1].experiment_id
