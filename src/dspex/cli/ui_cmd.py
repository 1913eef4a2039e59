"""``dspex ui``: serve the TraceViewer web UI over the configured store."""

from __future__ import annotations

from pathlib import Path

import click

from dspex.errors import DspexError
from dspex.store import ResultStore

__all__ = ["store_url", "ui_command"]

DEFAULT_RESULTS_DIR = "dspex_results"


def store_url(explicit: str | None) -> str | None:
    """The URL ``dspex ui`` opens: ``--store``, else None for the configured store; with
    nothing configured (the memory default, which another process cannot see) the
    ``./dspex_results`` file store that ``dspex demo`` writes."""
    if explicit:
        return explicit
    from dspex.config import get_settings

    if get_settings().store.backend == "memory":
        return "file://" + str(Path(DEFAULT_RESULTS_DIR).resolve())
    return None


def _store(explicit: str | None) -> ResultStore:
    url = store_url(explicit)
    return ResultStore.open(url) if url else ResultStore.default()


@click.command("ui")
@click.option("--host", default=None, help="Interface to bind (default: ui.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: ui.port, 8765).")
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="ResultStore URL (default: the configured store, else ./dspex_results).",
)
@click.option("--token", default=None, help="Access token to require (default: ui.token).")
def ui_command(
    host: str | None, port: int | None, store_url: str | None, token: str | None
) -> None:
    """Browse experiments and trial timelines in a local web UI."""
    from dspex.config import get_settings
    from dspex.view.web import check_bind, serve

    settings = get_settings().ui
    host = host or settings.host
    port = settings.port if port is None else port
    token = token or settings.token
    try:
        check_bind(host, token)
        store = _store(store_url).connect()
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    click.echo(f"dspex UI on http://{shown}:{port}/ over {store.url} (Ctrl+C to stop)")
    serve(store, host=host, port=port, token=token)
