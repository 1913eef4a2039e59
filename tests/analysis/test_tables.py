"""Trials and example results as tables: pandas frames, CSV, JSON lines and Parquet."""

from __future__ import annotations

import csv
import json
import sys

import pandas
import pyarrow.parquet
import pytest
from click.testing import CliRunner

from dspex import (
    Experiment,
    MissingExtraError,
    ProgramInfo,
    ResultStore,
    ValidationError,
    new_id,
)
from dspex.analysis.export import export_experiment
from dspex.cli import main
from dspex.model.rows import example_rows, trial_rows
from tests.model.scored import demo_like


def test_trials_frame_has_one_row_per_trial_with_its_scope():
    experiment = demo_like()
    frame = experiment.trials_frame()
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 4
    assert list(frame["scope"]) == ["dev", "minibatch", "minibatch", "dev"]
    assert list(frame["scope_n"]) == [20, 8, 8, 20]
    assert frame.loc[frame["best"], "name"].tolist() == ["optimized"]
    # the analysis a user would do: mean dev score, only over comparable scores
    dev = frame[frame["scope_fingerprint"] == experiment.trials[0].score_scope.fingerprint]
    assert dev["score"].tolist() == [0.4, 0.8]


def test_examples_frame_pairs_up_by_example_key():
    frame = demo_like().examples_frame()
    assert len(frame) == 20 + 8 + 8 + 20
    dev = frame[frame["trial_index"].isin([0, 3])]
    wide = dev.pivot(index="example_key", columns="trial_index", values="value")
    assert wide.shape == (20, 2) and (wide[3] - wide[0]).mean() == pytest.approx(0.4)
    assert json.loads(frame["inputs"][0]) == {"question": "What is 0 + 1?"}
    assert "metric.exact_match" in frame.columns


def test_frames_without_pandas_say_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'dspex\[analysis\]'"):
        demo_like().trials_frame()


def test_an_empty_experiment_has_empty_tables():
    empty = Experiment(name="empty", program=ProgramInfo(name="qa"))
    assert trial_rows(empty) == [] and example_rows(empty) == []
    assert len(empty.trials_frame()) == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_writes_both_tables_readably(tmp_path, fmt):
    experiment = demo_like()
    paths = export_experiment(experiment, tmp_path, fmt)
    assert [p.name for p in paths] == [
        f"{experiment.id}.trials.{fmt}",
        f"{experiment.id}.examples.{fmt}",
    ]
    trials, examples = (_read(p, fmt) for p in paths)
    assert [r["trial_id"] for r in trials] == [t.id for t in experiment.trials]
    assert len(examples) == 56
    assert float(trials[3]["score"]) == 0.8 and trials[3]["scope"] == "dev"


def _read(path, fmt):
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    return pyarrow.parquet.read_table(path).to_pylist()


def test_export_names_a_bad_format_or_table(tmp_path):
    with pytest.raises(ValidationError, match="'xlsx'.*csv, jsonl, parquet"):
        export_experiment(demo_like(), tmp_path, "xlsx")
    with pytest.raises(ValidationError, match="'events'"):
        export_experiment(demo_like(), tmp_path, "csv", ["events"])


def test_parquet_without_pyarrow_says_which_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingExtraError, match="dspex\\[analysis\\]"):
        export_experiment(demo_like(), tmp_path, "parquet")


def test_dspex_export_writes_the_tables_of_an_archived_experiment(tmp_path):
    url = f"file://{tmp_path / 'store'}"
    experiment = demo_like()
    ResultStore.open(url).connect().archive_experiment(experiment)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["export", experiment.id, "--format", "jsonl", "--output", str(out), "--store", url]
    )
    assert result.exit_code == 0, result.output
    assert result.output.split() == [
        str(out / f"{experiment.id}.trials.jsonl"),
        str(out / f"{experiment.id}.examples.jsonl"),
    ]
    assert len(_read(out / f"{experiment.id}.trials.jsonl", "jsonl")) == 4
    only = CliRunner().invoke(
        main, ["export", experiment.id, "--table", "trials", "--output", str(out), "--store", url]
    )
    assert only.output.split() == [str(out / f"{experiment.id}.trials.csv")]
    missing = CliRunner().invoke(main, ["export", new_id("exp"), "--store", url])
    assert missing.exit_code == 1 and "no experiment with id" in missing.output
