"""The store the command line uses, for every CLI module that reads or writes experiments.

The configured store, by the one rule that Python and the web UI follow too (the file
store ``./dspex_results`` unless configured otherwise; memory under ``DSPEX_ENV=test``).
Every command that uses a store takes ``--store URL`` (or a directory)::

    @click.command()
    @store_option
    def mine(store_url: str | None) -> None:
        store = cli_store(store_url)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from dspex.errors import DspexError

if TYPE_CHECKING:
    from dspex.store import ResultStore

__all__ = ["cli_store", "cli_store_url", "store_option"]


def cli_store_url(url: str | None = None) -> str:
    """``url`` (a URL or a directory) if given, else the configured store's URL."""
    from dspex.store.backend import store_url
    from dspex.store.service import url_from_settings

    if url:
        return store_url(url)
    try:
        return url_from_settings()
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc


def cli_store(url: str | None = None, *, read_only: bool = False) -> ResultStore:
    """The connected store for a command, closed when the command ends; errors become a
    one-line message and exit 1.

    ``read_only`` for commands that only read (``experiments ls|show``, ``ui``, ``store
    verify``): they create and change nothing, and a missing store is an error naming
    its URL.
    """
    from dspex.store import ResultStore

    try:
        store = ResultStore.open(cli_store_url(url), read_only=read_only).connect()
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    context = click.get_current_context(silent=True)
    if context is not None:  # no -wal/-shm or open connection outlives the command
        context.call_on_close(store.close)
    return store


def store_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--store URL``: use this store instead of the configured one."""
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=None,
        help="Store: a directory (a file store) or a URL (file:///dir, sqlite:///x.db, "
        "postgresql://...); default: the configured store (dspex config show).",
    )(command)
