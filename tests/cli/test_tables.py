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


LS_HEADERS = ["ID", "NAME", "PROGRAM", "OPTIMIZER", "STATUS", "CREATED", "TRIALS", "BEST",
              "ON", "VERDICT"]  # fmt: skip
TRIAL_HEADERS = ["#", "CAND", "NAME", "STATUS", "SCORE", "SCOPE", "N", "OUTCOME", "EVENTS",
                 "TIME", "ID"]  # fmt: skip


def _header_words(table: str, known: list[str]) -> list[str]:
    """The header line's words, each of which must be a whole header (none split)."""
    header = table.splitlines()[0].split()
    assert header == [h for h in known if h in header], header
    return header


@pytest.mark.parametrize("width", range(80, 201))
def test_ls_and_show_fit_every_width_without_splitting_a_header(store_url, demo, width):
    env = {"COLUMNS": str(width)}
    out = CliRunner().invoke(main, ["experiments", "ls", "--store", store_url], env=env)
    lines = out.output.splitlines()
    assert max(len(line) for line in lines) <= width
    shown = _header_words(out.output, LS_HEADERS)
    assert {"ID", "NAME", "STATUS", "BEST", "ON"} <= set(shown)
    following = shown[shown.index("NAME") + 1]
    name_width = lines[0].index(f"  {following}") - lines[0].index("NAME")
    assert name_width >= 15  # names are not cut every 8 characters
    if width >= 160:  # room for everything
        assert shown == LS_HEADERS
    show = CliRunner().invoke(main, ["experiments", "show", demo.id, "--store", store_url],
                              env=env)  # fmt: skip
    assert max(len(line) for line in show.output.splitlines()) <= width
    table = show.output.split("trials (7):\n", 1)[1]
    _header_words(table, TRIAL_HEADERS)
