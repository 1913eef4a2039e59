"""``dspex export EXP``: an experiment's records for analysis elsewhere.

    $ dspex export exp_01... --format csv              # ./exp_01....trials.csv and .examples.csv
    $ dspex export exp_01... --format parquet --output results/ --table trials

Tables: one row per trial, one row per example result (see ``docs/analysis.md``).
Parquet needs pyarrow: ``pip install 'dspex[analysis]'``.
"""

from __future__ import annotations

from pathlib import Path

import click

from dspex.analysis.export import FORMATS, TABLES, export_experiment
from dspex.cli._store import cli_store, store_option
from dspex.errors import DspexError

__all__ = ["export_command"]


@click.command("export")
@click.argument("experiment_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="csv",
    show_default=True,
    help="Table format.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory to write <id>.<table>.<format> files into.",
)
@click.option(
    "--table",
    "tables",
    type=click.Choice(tuple(TABLES)),
    multiple=True,
    help="Only this table (repeat for both; default: trials and examples).",
)
@store_option
def export_command(
    store_url: str | None, experiment_id: str, fmt: str, output: Path, tables: tuple[str, ...]
) -> None:
    """Write an experiment's trials and per-example results as tables."""
    store = cli_store(store_url)
    try:
        experiment = store.get_experiment(experiment_id)
        paths = export_experiment(experiment, output, fmt, tables or tuple(TABLES))
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in paths:
        click.echo(str(path))
