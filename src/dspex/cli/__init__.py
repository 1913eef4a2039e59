"""The ``dspex`` command line: one click group, one module per command family.

Each family module defines a click command or group and is registered in
:data:`COMMANDS`; ``dspex --help`` lists them.
"""

from __future__ import annotations

import importlib

import click

from dspex import __version__

__all__ = ["main"]

# (module, attribute) of each command family, imported when the CLI starts.
COMMANDS: list[tuple[str, str]] = [
    ("dspex.cli.config_cmd", "config_group"),
    ("dspex.cli.demo_cmd", "demo"),
    ("dspex.cli.export_cmd", "export_command"),
    ("dspex.cli.store_cmd", "experiments_group"),
    ("dspex.cli.store_cmd", "store_group"),
    ("dspex.cli.ui_cmd", "ui_command"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dspex")
def main() -> None:
    """dspex: the lab notebook and debugger for DSPy programs and optimizers.

    Settings come from dspex.toml or [tool.dspex] in pyproject.toml, DSPEX_*
    environment variables and DSPEX_ENV; see `dspex config show`.
    """


for _module, _attribute in COMMANDS:
    main.add_command(getattr(importlib.import_module(_module), _attribute))
