"""``dspex config show`` and ``dspex config check``."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dspex.errors import ConfigError
from dspex.redact import redact_url

if TYPE_CHECKING:
    from dspex import config


@click.group("config")
def config_group() -> None:
    """Inspect and validate the effective configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show(as_json: bool) -> None:
    """Print every effective setting with the source it came from."""
    from dspex import config

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
    click.echo(f"store:       {_store_line(loaded.settings)}")
    width = max(len(k) for k, _, _ in rows)
    value_width = min(40, max(len(repr(v)) for _, v, _ in rows))
    for key, value, source in rows:
        click.echo(f"{key:<{width}}  {json.dumps(value):<{value_width}}  {source}")


def _store_line(settings: config.Settings) -> str:
    """The store every `dspex` command, the web UI and Python use when none is named."""
    from dspex.store.service import url_from_settings

    url = redact_url(url_from_settings(settings.store))
    if settings.store.backend == "memory":
        return f"{url} (memory: nothing outlives a process; `dspex` commands see nothing)"
    return url


@config_group.command("check")
def check() -> None:
    """Validate the configuration; report every problem at once and exit 1 if there is one."""
    from dspex import config

    problems = config.check(cwd=Path.cwd(), environ=os.environ)
    for problem in problems:
        first, *rest = problem.splitlines()
        click.echo(f"error: {first}", err=True)
        for line in rest:
            click.echo(textwrap.indent(line.strip(), "  "), err=True)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        click.echo(f"{count}; `dspex config show` lists every setting and its source", err=True)
        raise SystemExit(1)
    try:
        loaded = config.load(cwd=Path.cwd())
    except ConfigError as exc:  # check() and load() agree; this is a safety net
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc
    where = loaded.config_file or "defaults and environment only"
    click.echo(f"configuration is valid ({where})")
