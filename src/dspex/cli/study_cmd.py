"""``dspex study run|ls|show|export``: studies from the command line (see docs/studies.md).

    dspex study run study.toml --store postgresql://db/dspex --engine ray --address auto
    dspex study ls
    dspex study show simba-vs-mipro
    dspex study export simba-vs-mipro --format parquet --output results/

``run`` checks the whole spec first (every error at once, with its key), then runs the
cells with a progress bar (cells done, running and failed, elapsed, LM calls, cost so
far). Running the same spec again resumes the study. Ctrl-C stops it cleanly, keeping
every finished cell; the exit status is 130 then, 1 when cells failed, else 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dspex.cli._store import cli_store, store_option
from dspex.errors import DspexError

__all__ = ["ProgressBar", "study_group"]


@click.group("study")
def study_group() -> None:
    """Run studies (arms x seeds) and read their results."""


@study_group.command("run")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@store_option
@click.option(
    "--engine",
    type=click.Choice(["local", "ray", "inline"]),
    help="Where cells run: worker processes here, a Ray cluster, or this process.",
)
@click.option("--address", help="Ray cluster address (auto, ray://head:10001); ray engine.")
@click.option("--max-concurrent", type=click.IntRange(min=1), help="Cells running at once.")
@click.option(
    "--cpus-per-cell",
    type=click.FloatRange(min=0, min_open=True),
    help="CPUs each cell asks Ray for.",
)
@click.option(
    "--retries", type=click.IntRange(min=0), help="Retries of a cell whose worker died (default 2)."
)
@click.option("--threads", type=click.IntRange(min=1), help="Evaluation threads in each cell.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a cell may run before it is stopped.",
)
@click.option("--verbose", "-v", is_flag=True, help="Let the cells print (DSPy's own output).")
def run(store_url: str | None, spec: Path, verbose: bool, **options: Any) -> None:
    """Run (or resume) the study described by the TOML file SPEC."""
    from dspex.study import Study

    try:
        study = Study.from_toml(spec)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    store = cli_store(store_url)
    bar = ProgressBar(study.name)
    try:
        with bar:
            record = study.run(store=store, on_progress=bar.update, quiet=not verbose, **options)
    except KeyboardInterrupt:
        stopped = study._record
        sealed = sum(1 for c in stopped.cells if c.status.value == "sealed") if stopped else 0
        total = len(stopped.cells) if stopped else 0
        click.echo(
            f"interrupted: {sealed} of {total} cells sealed in {store.url}; run the same "
            "command again to resume",
            err=True,
        )
        raise SystemExit(130) from None
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(_outcome(record, store.url, store_url))
    if record.status.value != "completed":
        raise SystemExit(1)


def _outcome(record: Any, url: str, store_url: str | None) -> str:
    from dspex.view.safetext import terminal_safe

    cells = record.cells
    sealed = sum(1 for c in cells if c.status.value == "sealed")
    lines = [f"study {record.name}: {record.status.value}, {sealed} of {len(cells)} cells sealed"]
    if record.verdict is not None:
        lines.append(f"verdict: {record.verdict.outcome.value}. {record.verdict.reason}")
    for cell in cells:
        if cell.status.value == "failed" and cell.attempts:
            lines.append(f"  failed: {cell.arm} seed {cell.seed}: {cell.attempts[-1].cause}")
    store = f" --store {store_url}" if store_url else ""
    lines.append(f"details: dspex study show {record.name}{store}   (store: {url})")
    if record.status.value != "completed":
        lines.append("run the same command again to retry the cells that did not seal")
    return "\n".join(terminal_safe(line) for line in lines)


class ProgressBar:
    """Cells sealed of all, with running, failed, elapsed, LM calls and cost so far."""

    def __init__(self, name: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("study {task.fields[name]}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} sealed"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task("", total=None, name=name, detail="starting")

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, snapshot: Any) -> None:
        cost = f" · ${snapshot.cost:.4f}" if snapshot.cost is not None else ""
        detail = (
            f"{snapshot.running} running · {snapshot.failed} failed · "
            f"{snapshot.lm_calls} LM calls{cost}"
        )
        self.progress.update(
            self.task, total=snapshot.total, completed=snapshot.sealed, detail=detail
        )


@study_group.command("ls")
@store_option
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def ls(store_url: str | None, limit: int) -> None:
    """List the studies in the store, most recently updated first."""
    from dspex.cli._tables import terminal_width
    from dspex.view.safetext import terminal_safe

    store = cli_store(store_url, read_only=True)
    try:
        studies = store.query_studies(limit=limit)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    if not studies:
        click.echo(f"no studies in {store.url}")
        return
    rows = [
        [
            s.name,
            s.status.value,
            f"{s.sealed}/{s.cells}",
            str(s.failed),
            ", ".join(s.arms),
            s.verdict.value if s.verdict else "-",
            s.updated_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for s in studies
    ]
    headers = ["NAME", "STATUS", "SEALED", "FAILED", "ARMS", "VERDICT", "UPDATED (UTC)"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    width = terminal_width()
    for row in [headers, *rows]:
        line = "  ".join(terminal_safe(c).ljust(w) for c, w in zip(row, widths, strict=True))
        click.echo(line.rstrip()[:width])


@study_group.command("show")
@click.argument("name")
@store_option
def show(store_url: str | None, name: str) -> None:
    """Show a study: verdict, arms across seeds, comparisons, and every cell."""
    from dspex.cli._tables import terminal_width
    from dspex.view.study import study_text

    store = cli_store(store_url, read_only=True)
    try:
        record = store.get_study(name)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(study_text(record, width=terminal_width()), nl=False)


@study_group.command("export")
@click.argument("name")
@store_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default="csv",
    show_default=True,
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Directory to write <study>.cells.<format> into.",
)
def export(store_url: str | None, name: str, fmt: str, output: Path) -> None:
    """Write a study's cells, one row each (arm, seed, status, scores, cost...)."""
    from dspex.analysis.export import export_study

    store = cli_store(store_url, read_only=True)
    try:
        path = export_study(store.get_study(name), output, fmt)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {path}")
