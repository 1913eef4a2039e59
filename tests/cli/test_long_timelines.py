"""A long trial's timeline in the terminal, checked by structure at 80 and 100 columns
(a golden file of 2,377 events would be too big to review)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from dspex import ResultStore
from dspex.cli import main
from tests.view.fixtures import large_experiment

STAMP = re.compile(r"^\s*\[\d\d:\d\d:\d\d\.\d{3}\] ")


@pytest.fixture(scope="module")
def large():
    return large_experiment()


@pytest.fixture
def url(large):
    url = "memory://cli-long"
    ResultStore.open(url).archive_experiment(large)
    return url


@pytest.mark.parametrize("width", [80, 100])
def test_an_abridged_long_trial_fits_and_ends_with_its_score(url, large, width):
    out = CliRunner().invoke(
        main, ["experiments", "show", large.id, "--trial", "0", "--store", url],
        env={"COLUMNS": str(width)},
    ).output  # fmt: skip
    lines = out.splitlines()
    assert max(len(line) for line in lines if "dspex experiments show" not in line) <= width
    assert lines[0].startswith("Trial 0 · ")
    assert sum(1 for line in lines if STAMP.match(line)) == 200  # the default cut
    cut = [line for line in lines if line.startswith("... ")]
    assert len(cut) == 1 and int(cut[0].split()[1]) + 200 <= len(large.trials[0].events)
    assert f"  dspex experiments show {large.id} --trial 0 --full" in lines  # the rest
    assert lines[-1].startswith("Final Score: ")


@pytest.mark.parametrize("width", [80, 100])
def test_full_prints_every_event_once(url, large, width):
    out = CliRunner().invoke(
        main, ["experiments", "show", large.id, "--trial", "0", "--full", "--store", url],
        env={"COLUMNS": str(width)},
    ).output  # fmt: skip
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width
    assert sum(1 for line in lines if STAMP.match(line)) == len(large.trials[0].events)
    assert "more events" not in out


def test_a_trial_over_the_long_bound_prints_one_page_and_the_command_for_the_next(
    monkeypatch, tmp_path
):
    from tests.view.big_trials import LONG_TRIAL, long_experiment

    url = f"file://{tmp_path / 'store'}"
    experiment = long_experiment(3_000)
    ResultStore.open(url).archive_experiment(experiment)
    trial = experiment.trials[LONG_TRIAL]
    monkeypatch.setattr("dspex.view.window.LONG_TRIAL", 1_000)
    whole = []
    read = ResultStore.get_experiment

    def get_experiment(self, experiment_id, *, events=True):
        whole.append(events)
        return read(self, experiment_id, events=events)

    monkeypatch.setattr(ResultStore, "get_experiment", get_experiment)
    env = {"COLUMNS": "100"}
    summary = CliRunner().invoke(
        main, ["experiments", "show", experiment.id, "--store", url], env={"COLUMNS": "160"}
    )
    assert whole == [False] and summary.exit_code == 0  # the summaries, no event
    rows = [line.split() for line in summary.output.splitlines() if trial.id in line]
    assert rows and "3000" in rows[0]  # the EVENTS column, from the trial's summary
    whole.clear()
    show = ["experiments", "show", experiment.id, "--trial", str(trial.index), "--store", url]
    out = CliRunner().invoke(main, show, env=env).output
    assert whole == [False]  # the trials' headers only
    flat = " ".join(out.split())
    assert "this view read events 1–200 of 3,000 (a page at a time)" in flat
    assert "2,800 events not shown (2,800 after)." in flat
    command = f"dspex experiments show {experiment.id} --trial {trial.index} --offset 200"
    assert f"The next 200: {command}" in out.splitlines()
    assert sum(1 for line in out.splitlines() if STAMP.match(line)) <= 200
    last = CliRunner().invoke(main, [*show, "--offset", "2900", "--full"], env=env).output
    assert sum(1 for line in last.splitlines() if STAMP.match(line)) == 100
    assert "events 2,901–3,000 of 3,000" in " ".join(last.split()) and "The next" not in last
    past = CliRunner().invoke(main, [*show, "--offset", "3000"], env=env)
    assert past.exit_code == 1 and "offset 3,000 is past the trial's events" in past.output
    alone = CliRunner().invoke(main, ["experiments", "show", experiment.id, "--offset", "5"])
    assert alone.exit_code == 2 and "--offset applies to one trial's timeline" in alone.output
