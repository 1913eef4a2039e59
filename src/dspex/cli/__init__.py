"""The ``dspex`` command line: one click group, one module per command family.

Start-up is part of the interface: ``dspex --help`` must answer in well under 0.3 s, so
nothing here imports a command's module until that command runs (or its own ``--help``
is asked for). Each family is one :class:`Command` entry in :data:`COMMANDS`:

* ``name`` and ``summary``: what ``dspex --help`` lists, without importing anything
  (``tests/cli/test_startup.py`` checks that the summary is the command's own);
* ``module`` and ``attribute``: where the click command or group lives.

A family module keeps its top level light: click, the standard library and
:mod:`dspex.cli._store`; DSPy, SQLAlchemy, Starlette, rich, pydantic models and the
views are imported inside the functions that use them. ``tests/cli/test_startup.py``
runs every ``--help`` in a fresh interpreter and fails when one of them imports such a
module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import click

from dspex._version import __version__

__all__ = ["COMMANDS", "Command", "main"]


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    attribute: str
    summary: str

    def load(self) -> click.Command:
        command = getattr(importlib.import_module(self.module), self.attribute)
        assert isinstance(command, click.Command)
        return command


COMMANDS: tuple[Command, ...] = (
    Command(
        "compare",
        "dspex.cli.compare_cmd",
        "compare_command",
        "Compare A and B, each EXPERIMENT_ID or EXPERIMENT_ID:TRIAL (a trial id or its #).",
    ),
    Command(
        "config",
        "dspex.cli.config_cmd",
        "config_group",
        "Inspect and validate the effective configuration.",
    ),
    Command(
        "demo",
        "dspex.cli.demo_cmd",
        "demo",
        "Run a recorded optimization on the offline LM and show what it decided.",
    ),
    Command(
        "experiments",
        "dspex.cli.store_cmd",
        "experiments_group",
        "List and show archived experiments.",
    ),
    Command(
        "export",
        "dspex.cli.export_cmd",
        "export_command",
        "Export an experiment: as tables (csv, jsonl, parquet) or as OpenTelemetry traces.",
    ),
    Command(
        "store",
        "dspex.cli.store_cmd",
        "store_group",
        "Check, index and migrate the ResultStore.",
    ),
    Command(
        "study",
        "dspex.cli.study_cmd",
        "study_group",
        "Run studies (arms x seeds) and read their results.",
    ),
    Command(
        "ui",
        "dspex.cli.ui_cmd",
        "ui_command",
        "Browse experiments and trial timelines in a local web UI.",
    ),
)


class _LazyGroup(click.Group):
    """A group whose subcommands are imported only when one of them is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(c.name for c in COMMANDS)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        for entry in COMMANDS:
            if entry.name == cmd_name:
                return entry.load()
        return None

    def invoke(self, ctx: click.Context) -> object:
        # A safety net: an error of dspex's that a command did not turn into a message
        # (a missing extra, say) is still one line and exit status 1, not a traceback.
        from dspex.errors import DspexError

        try:
            return super().invoke(ctx)
        except DspexError as exc:
            raise click.ClickException(str(exc)) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        entries = sorted(COMMANDS, key=lambda c: c.name)
        limit = formatter.width - 6 - max(len(c.name) for c in entries)
        # a stand-in command shortens the summary exactly as click would the real one's
        rows = [(c.name, click.Command(c.name, help=c.summary).get_short_help_str(limit))
                for c in entries]  # fmt: skip
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dspex")
def main() -> None:
    """dspex: the lab notebook and debugger for DSPy programs and optimizers.

    Settings come from dspex.toml or [tool.dspex] in pyproject.toml, DSPEX_*
    environment variables and DSPEX_ENV; see `dspex config show`.
    """
