"""The CLI benchmark times every --help that exists and marks rows against their targets."""

from __future__ import annotations

from benchmarks import bench_cli

from dspex.cli import COMMANDS


def test_every_command_s_help_has_a_row():
    paths = bench_cli.help_commands()
    assert () in paths
    assert {c.name for c in COMMANDS} <= {p[0] for p in paths if p}
    assert ("experiments", "ls") in paths and ("store", "migrate") in paths


def test_the_table_gives_ratios_and_verdicts():
    rows = [
        ("python -c pass", {"best": 0.05, "median": 0.06, "cpu": 0.01}, None),
        ("dspex --help", {"best": 0.1, "median": 0.12, "cpu": 0.06}, 0.3),
        ("dspex experiments ls (demo store)", {"best": 0.9, "median": 1.0, "cpu": 0.3}, 0.6),
    ]
    text = bench_cli.table(rows)
    assert "2.0  0.3 s ok" in text and "18.0  0.6 s OVER" in text
