"""The public-path benchmarks run, and check that every LM call they make is recorded."""

from __future__ import annotations

import re
import warnings

import pytest
from benchmarks import bench_instructions, bench_public_path


def test_bench_public_path_prints_both_tables_and_finds_every_call(capsys):
    bench_public_path.main(["--examples", "4", "--reps", "1", "--no-mlflow"])
    out = capsys.readouterr().out
    for row in (
        "dspy.Evaluate, no-op callback",
        "exp.evaluate + archive",
        "dspy.Evaluate in experiment + archive",
        "dspy.Evaluate, capture layer only",
        "exp.evaluate, events not written",
        "calls, no-op callback",
        "calls in experiment + archive",
        "calls, capture layer only",
        "calls in experiment, events not written",
    ):
        assert re.search(rf"^{re.escape(row)}\s+[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M), row
    assert "LM calls made but not recorded by dspex: 0" in out
    budgets = out.split("against the target's budget")
    assert len(budgets) == 3  # one budget table per table, after both
    assert "target 1.15x the floor" in budgets[1] and "target 1.10x the floor" in budgets[2]
    for row in ("exp.evaluate, events not written", "calls, capture layer only"):
        assert re.search(rf"^{re.escape(row)}\s+-?[\d.]+\s+-?[\d.]+$", out, re.M), row


def test_the_budget_is_what_the_target_allows_above_the_floor_and_each_rows_share():
    samples = {"floor": [2.0, 1.0, 3.0], "over": [2.6, 2.6, 2.6], "under": [2.1, 2.1, 2.1]}
    text = bench_public_path.budget(samples, 100, "µs/call", "floor", 1.10)
    # the floor's median is 2.0 s for 100 calls: 1.10x allows 0.2 s, 2,000 µs a call
    assert "target 1.10x the floor: 2000.0 µs/call above it" in text
    shares = {
        m[1]: (float(m[2]), float(m[3]))
        for m in re.finditer(r"^(\w+)\s+(\S+)\s+(\S+)$", text, re.M)
    }
    assert shares == {"over": (6000.0, 3.0), "under": (1000.0, 0.5)}
    assert "floor " not in text.splitlines()[-1]


def test_a_run_that_drops_calls_is_counted(monkeypatch):
    setup_class = bench_public_path.Setup
    monkeypatch.setattr(setup_class, "check", lambda self: 3)
    with pytest.raises(SystemExit, match="3 LM calls made but not recorded"):
        bench_instructions.main(["--child", "calls_in_experiment", "2", "3"])


def test_the_capture_layer_rows_count_the_calls_they_did_not_record(monkeypatch, tmp_path):
    from dspex.capture.callback import DspexCallback

    setup = bench_public_path.Setup(3, str(tmp_path), mlflow=False)
    setup.calls_capture_only()
    assert setup.check() == 0
    monkeypatch.setattr(DspexCallback, "on_lm_end", lambda self, *args, **kwargs: None)
    setup.calls_capture_only()  # three LM calls, none recorded
    assert setup.engine.calls == 6
    assert setup.check() == 3


def test_the_events_not_written_rows_write_no_event_and_count_every_call(monkeypatch, tmp_path):
    from dspex.capture.callback import DspexCallback
    from dspex.journal.writer import ExperimentSpool

    flush = ExperimentSpool._flush_locked
    setup = bench_public_path.Setup(3, str(tmp_path), mlflow=False)
    setup.calls_unwritten()
    setup.exp_evaluate_unwritten()
    assert ExperimentSpool._flush_locked is flush  # the ablation is undone after each run
    assert setup.check() == 0  # the dropped lm_call events match the LM's 6 calls
    # the experiments were archived and sealed, without a single event
    experiments = [setup.store.get_experiment(e.id) for e in setup.store.query_experiments()]
    assert len(experiments) == 2
    assert all(e.status == "completed" for e in experiments)
    trials = [t for e in experiments for t in e.trials]
    assert trials and all(len(t.events) == 0 for t in trials)
    assert sum(len(t.example_results) for t in trials) == 3

    monkeypatch.setattr(DspexCallback, "on_lm_end", lambda self, *args, **kwargs: None)
    setup.calls_unwritten()  # three LM calls, no lm_call event to drop
    assert setup.check() == 3


METHODS = sorted(m for c in bench_instructions.CONFIGURATIONS.values() for m in c.values())
# the other tools' rows need the bench extra (pip install 'dspex[bench]')
TOOL_MODULES = {"openinference": "openinference.instrumentation.dspy", "mlflow": "mlflow.dspy"}


@pytest.mark.parametrize("method", METHODS)
def test_each_counted_configuration_runs_and_records_every_call(method):
    for tool, module in TOOL_MODULES.items():
        if tool in method:
            pytest.importorskip(module, reason=f"{tool} is in the bench extra")
    with warnings.catch_warnings():
        # MLflow's own tracking store uses a loader strategy SQLAlchemy 2.1 deprecates
        warnings.filterwarnings("ignore", "The ``noload`` loader", DeprecationWarning)
        bench_instructions.main(["--child", method, "2", "3"])  # raises if a call went unrecorded


def test_openinference_row_counts_its_spans_against_the_lm_calls(capsys):
    pytest.importorskip("openinference.instrumentation.dspy", reason="in the bench extra")
    import dspy
    from dspy.adapters.base import Adapter

    methods = [(dspy.Module, "__call__"), (dspy.LM, "__call__"), (Adapter, "__call__")]
    methods.append((dspy.Tool, "__call__"))
    before = [getattr(owner, name) for owner, name in methods]
    samples, setup = bench_public_path.run(3, 1, side="openinference")
    # the instrumentor's uninstrument unwraps DSPy's own callback decorator too; the
    # benchmark puts back what was there, so later runs (and tests) hear their callbacks
    assert [getattr(owner, name) for owner, name in methods] == before
    assert set(samples["evaluation"]) == {
        "dspy.Evaluate, no-op callback",
        "dspy.Evaluate, OpenInference",
    }
    assert set(samples["direct calls"]) == {"calls, no-op callback", "calls, OpenInference"}
    assert setup.engine.calls > 0
    assert setup.unrecorded == 0  # one LLM span per LM call the engine answered
