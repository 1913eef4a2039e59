"""``dspex experiments ls|show`` and ``dspex store verify|reindex|migrate``."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from dspex.cli._store import cli_store, cli_store_url, store_option
from dspex.errors import DspexError, TrialNotFound
from dspex.model import Experiment, Trial
from dspex.store import ExperimentSummary

__all__ = ["experiments_group", "render_experiment", "render_table", "store_group"]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


@click.group("experiments")
def experiments_group() -> None:
    """List and show archived experiments."""


@experiments_group.command("ls")
@click.option("--hypothesis", help="Hypothesis id, or text in its research question.")
@click.option("--program", help="Program name, exactly.")
@click.option("--optimizer", help="Optimizer name; 'none' for plain evaluations.")
@click.option("--status", multiple=True, help="Status (repeat for several).")
@click.option("--tag", "tags", multiple=True, help="Tag; repeat: experiments with all of them.")
@click.option("--after", "created_after", help="Created at or after this ISO date/time.")
@click.option("--before", "created_before", help="Created before this ISO date/time.")
@click.option("--min-score", type=float, help="Best score at least this.")
@click.option("--max-score", type=float, help="Best score at most this.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--order-by", type=click.Choice(["created", "score"]), default="created")
@click.option("--cursor", help="Continue from a previous page (printed under it).")
@store_option
def ls(
    store_url: str | None, status: tuple[str, ...], tags: tuple[str, ...], **filters: Any
) -> None:
    """List experiments, newest (or best, with --order-by score) first."""
    store = cli_store(store_url)
    filters.update(status=list(status) or None, tags=list(tags) or None)
    try:
        page = store.query_experiments(filters)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    if not page:
        click.echo(f"no experiments match in {store.url}")
        return
    click.echo(render_table(_LS_HEADERS, [_ls_row(s) for s in page]))
    if page.next_cursor:
        click.echo(f"\nmore: --cursor {page.next_cursor}")


_LS_HEADERS = ("ID", "NAME", "PROGRAM", "OPTIMIZER", "STATUS", "CREATED", "TRIALS", "BEST")


def _ls_row(s: ExperimentSummary) -> list[Any]:
    status = s.status.value + ("" if s.sealed else "*")
    return [s.id, s.name, s.program, s.optimizer or "-", status, _when(s.created_at),
            s.trial_count, _score(s.best_score)]  # fmt: skip


@experiments_group.command("show")
@click.argument("experiment_id")
@click.option(
    "--trial",
    "trial_ref",
    metavar="TRIAL",
    help="Print this trial's unified timeline instead (its id, or its # in the table).",
)
@click.option("--full", is_flag=True, help="With --trial: every event, long texts unfolded.")
@store_option
def show(store_url: str | None, experiment_id: str, trial_ref: str | None, full: bool) -> None:
    """Show one experiment: what it tested, its result and its trials."""
    store = cli_store(store_url)
    try:
        experiment = store.get_experiment(experiment_id)
        if trial_ref is None:
            click.echo(render_experiment(experiment))
            return
        trial = _trial(experiment, trial_ref)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    from dspex.view import render_trial_text

    width = shutil.get_terminal_size((100, 24)).columns
    click.echo(
        render_trial_text(
            experiment,
            trial,
            width=max(60, min(width, 160)),
            abridged=not full,
            max_events=None if full else 200,
        )
    )


def _trial(experiment: Experiment, ref: str) -> Trial:
    """The trial named by ``ref``: its id, or its index in the experiment."""
    if ref.isdigit():
        for trial in experiment.trials:
            if trial.index == int(ref):
                return trial
        raise TrialNotFound(experiment.id, ref)
    return experiment.trial(ref)


def render_experiment(e: Experiment) -> str:
    """The plain-text summary of ``e`` with its trials table."""
    fields = [
        ("id", e.id),
        ("name", e.name),
        ("program", f"{e.program.name} {e.program.class_path}".strip()),
        ("optimizer", e.optimizer.name if e.optimizer else "none"),
        ("status", e.status.value),
        ("created", _when(e.created_at)),
        ("completed", _when(e.completed_at)),
        ("tags", ", ".join(e.tags)),
        ("hypothesis", e.hypothesis.research_question if e.hypothesis else ""),
        ("best score", _score(e.best_score)),
        ("best trial", e.best_trial_id or ""),
        ("export", _export_note(e.metadata.get("otlp_export"))),
    ]
    head = "\n".join(f"{name + ':':<12}{value}" for name, value in fields if value)
    rows = [
        [t.index, t.id, t.name, t.status.value, _score(t.score), len(t.example_results),
         len(t.events), "" if t.duration_ms is None else f"{t.duration_ms:.0f}ms"]
        for t in e.trials
    ]  # fmt: skip
    if not rows:
        return head + "\n\nno trials"
    headers = ("#", "TRIAL", "NAME", "STATUS", "SCORE", "EXAMPLES", "EVENTS", "DURATION")
    return head + f"\n\ntrials ({len(rows)}):\n" + render_table(headers, rows)


def _export_note(report: Any) -> str:
    """The live OTLP export's report (``metadata.otlp_export``) in one line."""
    if not isinstance(report, dict):
        return ""
    undelivered = report.get("undelivered") or []
    head = f"{report.get('trials')} trials to {report.get('endpoint')}"
    if not undelivered:
        return head + ", all delivered"
    return (
        f"{head}, {len(undelivered)} NOT delivered ({report.get('error')}); "
        f"send them: {report.get('resend')}"
    )


@click.group("store")
def store_group() -> None:
    """Check, index and migrate the ResultStore."""


@store_group.command("verify")
@store_option
def verify(store_url: str | None) -> None:
    """Check every sealed record against its checksum; exit 1 listing the damaged ones."""
    store = cli_store(store_url)
    problems = store.verify()
    for problem in problems:
        click.echo(f"damaged: {problem.record_id}: {problem.reason}")
    if problems:
        click.echo(f"{len(problems)} damaged record(s) in {store.url}", err=True)
        raise SystemExit(1)
    click.echo(f"every record in {store.url} matches its checksum")


@store_group.command("reindex")
@store_option
def reindex(store_url: str | None) -> None:
    """Rebuild the query index of a file store from its records."""
    from dspex.store.file import FileBackend

    store = cli_store(store_url)
    backend = store.backend
    if not isinstance(backend, FileBackend):
        raise click.ClickException(f"reindex applies to file:// stores, not {store.url}")
    problems = backend.reindex()
    for problem in problems:
        click.echo(f"skipped damaged: {problem.record_id}: {problem.reason}")
    click.echo(f"reindexed {store.url}: {store.count_experiments()} experiments")
    if problems:
        raise SystemExit(1)


@store_group.command("migrate")
@store_option
def migrate(store_url: str | None) -> None:
    """Apply pending schema migrations of a sql store (SQLite or PostgreSQL)."""
    from dspex.store.backend import backend_for_url, redact_url
    from dspex.store.sql import SqlBackend

    url = cli_store_url(store_url)
    try:
        backend = backend_for_url(url)
        if not isinstance(backend, SqlBackend):
            raise click.ClickException(f"migrate applies to sql stores, not {redact_url(url)}")
        before, after = backend.migrate()
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    if before == after:
        click.echo(f"schema is up to date (revision {after})")
    else:
        click.echo(f"migrated schema from revision {before or '(none)'} to {after}")
