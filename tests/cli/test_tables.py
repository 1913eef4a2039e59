"""`dspex experiments ls` and `show` fit the terminal: golden files at 80 and 100 columns."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dspex import ResultStore
from dspex.cli import main
from tests.cli.conftest import check_golden
from tests.view.fixtures import DATA_DIR, large_experiment, load, simba_experiment

WIDTHS = (80, 100)


@pytest.fixture(scope="module")
def demo():
    return load(DATA_DIR / "simba_demo_trimmed.json")


@pytest.fixture
def store_url(demo):
    url = "memory://cli-tables"
    store = ResultStore.open(url)
    for experiment in (simba_experiment(), large_experiment(n_examples=6), demo):
        store.archive_experiment(experiment)
    return url


@pytest.mark.parametrize("width", WIDTHS)
def test_ls_fits_the_terminal(store_url, width):
    out = CliRunner().invoke(
        main, ["experiments", "ls", "--store", store_url], env={"COLUMNS": str(width)}
    )
    assert out.exit_code == 0, out.output
    assert max(len(line) for line in out.output.splitlines()) <= width
    check_golden(f"ls-{width}.txt", out.output)


@pytest.mark.parametrize("width", WIDTHS)
def test_show_fits_the_terminal(store_url, demo, width):
    out = CliRunner().invoke(
        main, ["experiments", "show", demo.id, "--store", store_url], env={"COLUMNS": str(width)}
    )
    assert out.exit_code == 0, out.output
    assert max(len(line) for line in out.output.splitlines()) <= width
    check_golden(f"show-{width}.txt", out.output)
