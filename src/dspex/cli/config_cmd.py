"""``dspex config show`` and ``dspex config check``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from dspex import config
from dspex.errors import ConfigError


@click.group("config")
def config_group() -> None:
    """Inspect and validate the effective configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show(as_json: bool) -> None:
    """Print every effective setting with the source it came from."""
    try:
        loaded = config.load(cwd=Path.cwd())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = [(v.key, v.value, v.source) for v in loaded.values]
    if as_json:
        click.echo(json.dumps([{"key": k, "value": v, "source": s} for k, v, s in rows], indent=2))
        return
    click.echo(f"config file: {loaded.config_file or '(none)'}")
    click.echo(f"environment: {loaded.env or '(none; set DSPEX_ENV to dev, test or prod)'}")
    width = max(len(k) for k, _, _ in rows)
    value_width = min(40, max(len(repr(v)) for _, v, _ in rows))
    for key, value, source in rows:
        click.echo(f"{key:<{width}}  {json.dumps(value):<{value_width}}  {source}")


@config_group.command("check")
def check() -> None:
    """Validate the configuration; exit non-zero naming the file, the key and the fix."""
    try:
        loaded = config.load(cwd=Path.cwd())
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc
    for name in config.unknown_env_vars(os.environ):
        click.echo(f"warning: environment variable {name} names no dspex setting", err=True)
    where = loaded.config_file or "defaults and environment only"
    click.echo(f"configuration is valid ({where})")
