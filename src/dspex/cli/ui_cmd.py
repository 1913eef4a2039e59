"""``dspex ui``: serve the TraceViewer web UI over the configured store."""

from __future__ import annotations

import click

from dspex.cli._store import cli_store, store_option
from dspex.errors import DspexError

__all__ = ["ui_command"]


@click.command("ui")
@click.option("--host", default=None, help="Interface to bind (default: ui.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: ui.port, 8765).")
@store_option
@click.option("--token", default=None, help="Access token to require (default: ui.token).")
def ui_command(
    host: str | None, port: int | None, store_url: str | None, token: str | None
) -> None:
    """Browse experiments and trial timelines in a local web UI."""
    from dspex.config import get_settings
    from dspex.view.web import check_bind, serve
    from dspex.view.web.serve import bind, leave_now

    settings = get_settings().ui
    host = host or settings.host
    port = settings.port if port is None else port
    token = token or settings.token
    try:
        check_bind(host, token)
        sock = bind(host, port)  # before the URL is printed: a busy port is one clear error
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    store = cli_store(store_url, read_only=True)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    click.echo(f"dspex UI on http://{shown}:{port}/ over {store.url} (Ctrl+C to stop)")
    try:
        serve(store, host=host, port=port, token=token, sock=sock)
    except (SystemExit, KeyboardInterrupt) as stop:  # SIGTERM or Ctrl-C, after shutdown
        store.close()
        leave_now(stop.code if isinstance(stop, SystemExit) else 130)
