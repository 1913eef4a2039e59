"""`--trial` takes a row number, a candidate number or an id, and errors say what is valid."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dspex import ResultStore
from dspex.cli import main
from tests.view.fixtures import DATA_DIR, load


@pytest.fixture(scope="module")
def demo():
    return load(DATA_DIR / "simba_demo_trimmed.json")


@pytest.fixture
def url(demo):
    url = "memory://cli-trial-ref"
    ResultStore.open(url).archive_experiment(demo)
    return url


def show(url, *args, code=0):
    result = CliRunner().invoke(main, ["experiments", "show", *args, "--store", url])
    assert result.exit_code == code, result.output
    return result.output


def test_a_row_number_a_candidate_number_and_an_id_name_the_same_trial(url, demo):
    trial = demo.trials[3]  # row 4 of the table, candidate 1
    assert trial.index == 4 and trial.metadata["candidate"] == 1
    by_row = show(url, demo.id, "--trial", "4")
    for ref in ("c1", "candidate 1", "C1", trial.id):
        assert show(url, demo.id, "--trial", ref) == by_row
    assert by_row.startswith("Trial 4 · candidate 1 · 0.75 on minibatch (n=8)")
    assert "parent: Trial 2 · candidate 0" in by_row  # the decision says "from candidate 0"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("999", "no trial #999 in experiment {id}: rows run 0–17"),
        ("c99", "no candidate 99 in experiment {id}: candidates run 0–12"),
        ("foo", "'foo' names no trial of experiment {id}: give a row number (0–17), a "
                "candidate number (c0–c12) or a trial id (trl_...)"),
        ("trl_01M8B7GFPE2130WET0B5F1C699", "no trial with id 'trl_01M8B7GFPE2130WET0B5F1C699'"),
    ],
)  # fmt: skip
def test_an_unknown_trial_says_what_was_looked_up_and_what_is_valid(url, demo, ref, message):
    out = show(url, demo.id, "--trial", ref, code=1)
    assert message.format(id=demo.id) in out


def test_full_without_trial_is_an_error_not_ignored(url, demo):
    out = show(url, demo.id, "--full", code=2)
    assert "--full applies to one trial's timeline: add --trial N" in out


def test_ls_errors_name_the_command_line_s_flags(tmp_path):
    from click.testing import CliRunner

    from dspex import ResultStore
    from dspex.cli import main

    url = f"file://{tmp_path / 'store'}"
    ResultStore.open(url).connect().close()  # an empty store
    for args, flags in [
        (["--order-by", "score"], ["--order-by score", "--scope <"]),
        (["--min-score", "0.5"], ["--min-score", "--scope <"]),
        (["--after", "yesterday"], ["--after has a bad value"]),
    ]:
        result = CliRunner().invoke(main, ["experiments", "ls", "--store", url, *args])
        assert result.exit_code == 1
        assert all(flag in result.output for flag in flags), result.output
        assert "scope=" not in result.output and "order_by" not in result.output
