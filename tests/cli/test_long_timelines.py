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
