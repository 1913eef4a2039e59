"""Optional parts of dspex and the one way to ask for them.

``pip install dspex`` records into the memory and file stores and gives the CLI and the
notebook and terminal views. The rest comes with extras, named for what they enable
(the ``[project.optional-dependencies]`` of ``pyproject.toml``; the README lists each
one's size). Code that needs an extra imports it through :func:`require`, which names
the extra to install when it is missing::

    >>> require("json", "sql", "the sql store").__name__      # present: the module
    'json'
    >>> require("no_such_module", "sql", "the sql store")
    Traceback (most recent call last):
    ...
    dspex.errors.MissingExtraError: the sql store needs no_such_module, ...
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dspex.errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

EXTRAS: dict[str, str] = {
    "ui": "the web UI (`dspex ui`): Starlette and uvicorn",
    "sql": "SQLite and PostgreSQL stores (sqlite:///, postgresql://): SQLAlchemy, Alembic",
    "postgres": "PostgreSQL stores: the sql extra and the psycopg 3 driver",
    "ray": "workers.adapter = 'ray': Ray",
    "otel": "OpenTelemetry export (dspex export --otlp, export.otlp_endpoint)",
    "analysis": "DataFrames (Experiment.trials_frame) and Parquet export: pandas, pyarrow",
    "all": "every extra above",
}
"""Each extra and what it enables."""


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def require(module: str, extra: str, purpose: str, *, packages: tuple[str, ...] = ()) -> ModuleType:
    """``module``, imported; when it is not installed, a :class:`~dspex.MissingExtraError`
    saying that ``purpose`` needs it and which extra brings it: one of :data:`EXTRAS`, or
    one of DSPy's own (``dspy[optuna]``: an optimizer's dependency that DSPy leaves out).

    ``packages``: for a module of dspex that imports the extra's packages, their names;
    a module missing within one of them means the extra is missing. Any other import
    error is a bug, raised as it is.
    """
    assert extra in EXTRAS or extra.startswith("dspy["), f"unknown extra {extra!r}"
    install = extra if extra.startswith("dspy[") else f"dspex[{extra}]"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        if not name or not (_within(module, name) or any(_within(name, p) for p in packages)):
            raise
        missing = next((p for p in packages if _within(name, p)), module.split(".")[0])
        raise MissingExtraError(
            f"{purpose} needs {missing}, which is not installed: pip install '{install}'",
            extra=extra,
            module=module,
        ) from exc
