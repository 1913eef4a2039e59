"""`dspex --help` and every command's `--help` import no heavy module: an import check
run in a fresh interpreter, not a timing (benchmarks/bench_cli.py times them)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from dspex.cli import COMMANDS, main

#: what a `--help` must never import: each costs from 0.1 s to more than a second
HEAVY = ("dspy", "sqlalchemy", "alembic", "starlette", "uvicorn", "rich", "pydantic",
         "numpy", "scipy", "pandas", "jinja2", "litellm", "dspex.model", "dspex.store",
         "dspex.view")  # fmt: skip

_PROBE = """
import json, sys
from dspex.cli import main
try:
    main(sys.argv[1:], prog_name="dspex")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _every_command_path() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [()]
    for entry in COMMANDS:
        command = entry.load()
        paths.append((entry.name,))
        if isinstance(command, click.Group):
            paths += [(entry.name, name) for name in command.commands]
    return paths


def _imported_by(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("path", _every_command_path(), ids=lambda p: " ".join(p) or "dspex")
def test_help_imports_no_heavy_module(path):
    imported = _imported_by(*path)
    heavy = sorted(m for m in imported if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"`dspex {' '.join(path)} --help` imports {heavy}"


def test_the_listing_shows_each_command_s_own_summary():
    for entry in COMMANDS:
        assert entry.summary == entry.load().get_short_help_str(limit=10_000), entry.name


def test_every_registered_command_is_listed_and_runs_its_help():
    names = main.list_commands(click.Context(main))
    assert names == sorted(c.name for c in COMMANDS)
    for name in names:
        command = main.get_command(click.Context(main), name)
        assert command is not None and command.name == name


def test_export_s_choices_are_the_analysis_module_s():
    from dspex.analysis.export import FORMATS, TABLES
    from dspex.cli import export_cmd

    assert export_cmd.FORMATS == FORMATS
    assert export_cmd.TABLES == tuple(TABLES)
