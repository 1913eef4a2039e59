"""The store the command line uses, for every CLI module that reads or writes experiments.

The configured store, except that the default ``memory`` backend (nothing configured)
would forget everything when the command exits: then a file store at
``./dspex_results``. Every command that uses a store takes ``--store URL``::

    @click.command()
    @store_option
    def mine(store_url: str | None) -> None:
        store = cli_store(store_url)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dspex.errors import DspexError

if TYPE_CHECKING:
    from dspex.store import ResultStore

__all__ = ["cli_store", "cli_store_url", "store_option"]

DEFAULT_CLI_STORE = Path("dspex_results")


def cli_store_url(url: str | None = None) -> str:
    """``url`` if given, else the configured store URL (a file store instead of memory)."""
    if url:
        return url
    from dspex.config import get_settings
    from dspex.store.service import url_from_settings

    try:
        backend = get_settings().store.backend
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    if backend == "memory":
        return "file://" + str(DEFAULT_CLI_STORE.resolve())
    return url_from_settings()


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
        help="Store URL (file:///dir, sqlite:///x.db, postgresql://...); "
        "default: the configured store, or ./dspex_results.",
    )(command)
