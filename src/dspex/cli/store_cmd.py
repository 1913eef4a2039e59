"""``dspex experiments ls|show`` and ``dspex store verify|reindex|migrate|recover``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dspex.cli._store import cli_store, cli_store_url, store_option
from dspex.errors import DspexError

if TYPE_CHECKING:
    from dspex.model import Experiment, Trial
    from dspex.store import ResultStore

__all__ = ["experiments_group", "in_flags", "store_group"]

#: query filter -> the `experiments ls` option that sets it
FLAGS = {"order_by": "--order-by", "min_score": "--min-score", "max_score": "--max-score",
         "scope": "--scope", "created_after": "--after", "created_before": "--before",
         "status": "--status", "tags": "--tag", "hypothesis": "--hypothesis",
         "program": "--program", "optimizer": "--optimizer", "limit": "--limit",
         "cursor": "--cursor"}  # fmt: skip
_FILTER = re.compile(r"filter '(\w+)'|\b(\w+)=(?=\S)|\b(order_by|min_score|max_score)\b")


def in_flags(message: str) -> str:
    """A query error as the command line says it: ``--scope ...``, not ``scope=...``.

    >>> print(in_flags("order_by=score needs scope=<key>; filter 'created_after' is bad"))
    --order-by score needs --scope <key>; --after is bad
    """

    def flag(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in FLAGS:
            return match.group(0)
        return FLAGS[name] + (" " if match.group(2) else "")

    return _FILTER.sub(flag, message)


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
@click.option(
    "--scope",
    help="Best scores over this example set only: a scope key <fingerprint>:<metric> "
    "(see `experiments show`) or an experiment id. Needed by --min-score, --max-score "
    "and --order-by score.",
)
@click.option("--min-score", type=float, help="Best score at least this (with --scope).")
@click.option("--max-score", type=float, help="Best score at most this (with --scope).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--order-by", type=click.Choice(["created", "score"]), default="created")
@click.option("--cursor", help="Continue from a previous page (printed under it).")
@store_option
def ls(
    store_url: str | None, status: tuple[str, ...], tags: tuple[str, ...], **filters: Any
) -> None:
    """List experiments, newest (or best, with --order-by score) first."""
    from dspex.cli._tables import ls_table, terminal_width

    store = cli_store(store_url, read_only=True)
    filters.update(status=list(status) or None, tags=list(tags) or None)
    try:
        page = store.query_experiments(filters)
    except DspexError as exc:
        raise click.ClickException(in_flags(str(exc))) from exc
    if not page:
        why = ""
        if store.url.startswith("memory:"):
            why = (" (a memory store: nothing in it outlives a process; `dspex config show` "
                   "says why it was chosen)")  # fmt: skip
        click.echo(f"no experiments match in {store.url}{why}")
        return
    click.echo(ls_table(page, width=terminal_width()))
    if page.next_cursor:
        click.echo(f"\nmore: --cursor {page.next_cursor}")


@experiments_group.command("show")
@click.argument("experiment_id")
@click.option(
    "--trial",
    "trial_ref",
    metavar="TRIAL",
    help="Print this trial's unified timeline instead: its row number (the # column), "
    "its candidate number (c8 or 'candidate 8') or its id.",
)
@click.option("--full", is_flag=True, help="With --trial: every event, long texts unfolded.")
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=None,
    help="With --trial: start at this event (0-based) and print a page of them. A trial "
    "of more than 20,000 events is always read a page at a time.",
)
@store_option
def show(
    store_url: str | None,
    experiment_id: str,
    trial_ref: str | None,
    full: bool,
    offset: int | None,
) -> None:
    """Show one experiment: what it tested, its result and its trials."""
    if (full or offset is not None) and trial_ref is None:
        raise click.UsageError(
            f"{'--full' if full else '--offset'} applies to one trial's timeline: add "
            "--trial N (the # column) or --trial cN (candidate N)"
        )
    from dspex.cli._tables import experiment_summary_text, terminal_width
    from dspex.view.labels import find_trial

    store = cli_store(store_url, read_only=True)
    width = terminal_width()
    text_width = max(60, min(width, 160))
    try:
        if trial_ref is None:  # the trials' stored summaries are what it shows
            experiment = store.get_experiment(experiment_id, events=False)
            click.echo(experiment_summary_text(experiment, width=width))
            return
        from dspex.view import render_trial_text
        from dspex.view.window import LONG_TRIAL, around_trial, holds_long_trial

        headers = store.get_experiment(experiment_id, events=False)
        trial = find_trial(headers, trial_ref)
        total = store.count_events(experiment_id, trial.id)
        if offset is None and total <= LONG_TRIAL:
            if holds_long_trial(headers, LONG_TRIAL):  # the other trials' ends only
                experiment = around_trial(store, headers, trial.id)
            else:
                experiment = store.get_experiment(experiment_id)
            text = render_trial_text(
                experiment,
                experiment.trial(trial.id),
                width=text_width,
                abridged=not full,
                max_events=None if full else 200,
            )
        else:  # a page of events only: a long trial is never read whole
            text = _trial_page_text(store, headers, trial, offset or 0, total, full, text_width)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(text, nl=False)


def _trial_page_text(
    store: ResultStore,
    headers: Experiment,
    header: Trial,
    offset: int,
    total: int,
    full: bool,
    width: int,
) -> str:
    """The timeline of events ``offset`` on of a trial (200 of them, or 500 with
    ``full``), read alone, saying which they are and the command for the next ones."""
    from dataclasses import replace

    from dspex.view.text import timeline_text
    from dspex.view.timeline import build_timeline
    from dspex.view.why import why_of
    from dspex.view.window import PAGE_EVENTS, read_window

    limit = PAGE_EVENTS if full else 200
    experiment, trial, window = read_window(
        store, headers.id, header.id, offset, limit, experiment=headers, total=total
    )
    if window.last < total:
        command = (
            f"dspex experiments show {headers.id} --trial {trial.index} --offset {window.last}"
            + (" --full" if full else "")
        )
        window = replace(window, more=f"The next {min(limit, total - window.last):,}: {command}")
    timeline = replace(build_timeline(trial, experiment), window=window)
    return timeline_text(timeline, width=width, abridged=not full, why=why_of(trial, experiment))


@click.group("store")
def store_group() -> None:
    """Check, index and migrate the ResultStore."""


@store_group.command("verify")
@store_option
def verify(store_url: str | None) -> None:
    """Check every sealed record against its checksum; exit 1 listing the damaged ones."""
    store = cli_store(store_url, read_only=True)
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


@store_group.command("recover")
@store_option
@click.argument("spool", required=False, type=click.Path(path_type=Path))
def recover_cmd(store_url: str | None, spool: Path | None) -> None:
    """Save what a write-ahead spool holds into the store, and seal its experiments.

    SPOOL is one experiment's spool directory (the path printed when a store failed) or
    the spool directory (default: journal.spool_dir), whose every experiment is saved.
    Without --store each experiment goes to the store it was recorded to. Trials of a
    process that was killed are saved as interrupted. Saving twice never duplicates.
    """
    from dspex.config import get_settings
    from dspex.journal.recover import recover, spool_directories
    from dspex.journal.spool import default_spool_dir

    if spool is None:
        configured = get_settings().journal.spool_dir
        spool = configured.expanduser() if configured else default_spool_dir()
    store = cli_store(store_url) if store_url else None
    failed = 0
    try:
        directories = spool_directories(spool)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    if not directories:
        click.echo(f"nothing to recover in {spool}")
        return
    for directory in directories:
        try:
            done = recover(directory, store, open_store=lambda url: cli_store(url))
        except DspexError as exc:
            failed += 1
            click.echo(f"not saved: {directory}: {exc}", err=True)
            continue
        if done.skipped:
            click.echo(f"skipped {directory}: {done.skipped}")
            continue
        interrupted = f", {len(done.interrupted)} interrupted" if done.interrupted else ""
        torn = f"; a torn tail of {done.torn_bytes} bytes dropped" if done.torn_bytes else ""
        click.echo(
            f"saved {done.experiment_id} into {done.store if store is None else store.url}: "
            f"{done.trials_written} trial(s) written{interrupted}, {done.events} event(s), "
            f"sealed {done.sealed_as}{torn}"
        )
    if failed:
        click.echo(
            f"{failed} spool(s) not saved; they are kept: run this again once the store answers",
            err=True,
        )
        raise SystemExit(1)
