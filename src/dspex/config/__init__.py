"""Centralized configuration: one entry point for every dspex setting.

Sources, later ones winning: defaults < config file (``dspex.toml`` or
``[tool.dspex]`` in ``pyproject.toml``; ``[env.<DSPEX_ENV>]`` overrides its base)
< ``DSPEX_<SECTION>_<KEY>`` environment variables < :func:`configure`::

    import dspex
    dspex.configure(store={"backend": "file", "path": "/data/dspex"})
    dspex.get_settings().store.path          # PosixPath('/data/dspex')
    for item in dspex.config.explain():      # what `dspex config show` prints
        print(item.key, item.value, item.source)

Every setting is documented in ``docs/configuration.md``. Bad values raise
:class:`dspex.ConfigError` naming the source, the key and what is allowed.
Loading reads the config file and the environment and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from dspex.config.schema import (
    CaptureSettings,
    EvaluationSettings,
    ExportSettings,
    Settings,
    StoreBackendName,
    StoreSettings,
    UISettings,
    WorkerAdapterName,
    WorkersSettings,
    setting_keys,
)
from dspex.config.sources import (
    ENVIRONMENTS,
    SourcedValue,
    closest_env_var,
    current_env,
    default_environ,
    env_source,
    file_source,
    find_config_file,
    flatten_overrides,
    unknown_env_vars,
)
from dspex.errors import ConfigError
from dspex.redact import MASK, is_secret_key, redact

__all__ = [
    "ENVIRONMENTS",
    "EvaluationSettings",
    "CaptureSettings",
    "ExportSettings",
    "LoadedConfig",
    "SettingValue",
    "Settings",
    "StoreBackendName",
    "check",
    "StoreSettings",
    "UISettings",
    "WorkerAdapterName",
    "WorkersSettings",
    "configure",
    "explain",
    "get_settings",
    "load",
    "numeric_range",
    "overrides",
    "reset",
    "setting_keys",
    "unknown_env_vars",
]


@dataclass(frozen=True)
class SettingValue:
    """One effective setting and the source it came from."""

    key: str
    value: Any
    source: str


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    values: tuple[SettingValue, ...]
    config_file: Path | None
    env: str | None


def load(
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> LoadedConfig:
    """Resolve settings from every source; pure apart from reading the file and ``environ``."""
    environ = default_environ() if environ is None else environ
    env_name = current_env(environ)
    file = find_config_file((cwd or Path.cwd()).resolve(), environ)
    layered: dict[str, SourcedValue] = {}
    if environ.get("PYTHON_EXECUTABLE"):
        layered["workers.python_path"] = SourcedValue(
            environ["PYTHON_EXECUTABLE"], "environment PYTHON_EXECUTABLE"
        )
    if env_name == "test":  # the one default that depends on the environment
        layered["store.backend"] = SourcedValue("memory", "default for DSPEX_ENV=test")
    layered.update(file_source(file, env_name))
    layered.update(env_source(environ))
    layered.update({k: SourcedValue(v, "configure()") for k, v in (runtime or {}).items()})
    settings = _validate(layered)
    values = tuple(
        SettingValue(
            key, _plain(settings, key), layered[key].source if key in layered else "default"
        )
        for key in setting_keys()
    )
    return LoadedConfig(settings, values, file.path if file else None, env_name)


def check(*, cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of the configuration at once, each naming its source and the fix.

    Unlike :func:`load`, which stops at the first problem, this reports unknown keys in
    the config file and unknown ``DSPEX_*`` variables (each with its closest valid
    name) together with every invalid value. An empty list means the configuration is
    valid.
    """
    environ = default_environ() if environ is None else environ
    errors: list[ConfigError] = []
    env_name = file = None
    try:
        env_name = current_env(environ)
    except ConfigError as exc:
        errors.append(exc)
    try:
        file = find_config_file((cwd or Path.cwd()).resolve(), environ)
        layered = dict(file_source(file, env_name, errors))
    except ConfigError as exc:  # the file itself cannot be read
        errors.append(exc)
        layered = {}
    layered.update(env_source(environ))
    problems = [str(e) for e in errors]
    for name in unknown_env_vars(environ):
        hint = closest_env_var(name)
        problems.append(
            f"environment {name}: names no dspex setting"
            + (f"; did you mean {hint}?" if hint else "; `dspex config show` lists them")
        )
    try:
        Settings.model_validate(_nested(layered))
    except PydanticValidationError as exc:
        problems += [line for _, _, line in _value_problems(exc, layered)]
    return problems


SECRET_KEYS = frozenset({"ui.token"})


def _plain(settings: Settings, dotted: str) -> Any:
    """A setting as `dspex config show` prints it: secrets masked, URLs without passwords."""
    section, key = dotted.split(".", 1)
    value = getattr(getattr(settings, section), key)
    plain = (
        value.value
        if hasattr(value, "value")
        else (str(value) if isinstance(value, Path) else value)
    )
    return _shown(dotted, plain)


def _shown(dotted: str, value: Any) -> Any:
    if (dotted in SECRET_KEYS or is_secret_key(dotted)) and value not in (None, ""):
        return MASK
    return redact(value)


def _nested(layered: Mapping[str, SourcedValue]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {}
    for dotted, sourced in layered.items():
        section, key = dotted.split(".", 1)
        nested.setdefault(section, {})[key] = sourced.value
    return nested


def _validate(layered: Mapping[str, SourcedValue]) -> Settings:
    try:
        return Settings.model_validate(_nested(layered))
    except PydanticValidationError as exc:
        raise _config_error(exc, layered) from exc


def _config_error(exc: PydanticValidationError, layered: Mapping[str, SourcedValue]) -> ConfigError:
    found = _value_problems(exc, layered)
    lines = [line for _, _, line in found]
    first_key, first_source = (found[0][0], found[0][1]) if found else (None, None)
    return ConfigError(
        "invalid dspex configuration:\n  " + "\n  ".join(lines), key=first_key, source=first_source
    )


def _value_problems(
    exc: PydanticValidationError, layered: Mapping[str, SourcedValue]
) -> list[tuple[str, str, str]]:
    """(dotted key, source, message) for each invalid value."""
    found = []
    for error in exc.errors(include_url=False):
        location = [str(part) for part in error["loc"]]
        dotted = ".".join(location[:2])
        sourced = layered.get(dotted)
        if sourced is None:  # a cross-field check of a whole section
            section = location[0] if location else ""
            related = [k for k in layered if k.startswith(section + ".")]
            source = ", ".join(sorted({layered[k].source for k in related})) or "default"
            line = f"{source}: {error['msg'].removeprefix('Value error, ')}"
        else:
            source = sourced.source
            allowed = _allowed(dotted)
            shown = _shown(dotted, sourced.value)
            line = f"{source}: {dotted} = {_clipped(shown)}: {error['msg']}" + (
                f" (allowed: {allowed})" if allowed else ""
            )
        found.append((dotted, source, line))
    return found


def _clipped(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters when longer (a 6,000-digit number)."""
    shown = repr(value)
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}… ({len(shown):,} characters)"


def _allowed(dotted: str) -> str:
    section, key = dotted.split(".", 1)
    section_model = Settings.model_fields[section].annotation
    if not (isinstance(section_model, type) and issubclass(section_model, BaseModel)):
        return ""
    field = section_model.model_fields.get(key)
    annotation = getattr(field, "annotation", None)
    if isinstance(annotation, type) and issubclass(
        annotation, StoreBackendName | WorkerAdapterName
    ):
        return " | ".join(member.value for member in annotation)
    return numeric_range(field) if field is not None else ""


def numeric_range(field: Any) -> str:
    """The range a numeric setting allows, as messages show it: ``1 to 4096``,
    ``more than 0 and at most 3600``; empty for other settings."""
    bounds: dict[str, Any] = {}
    for item in field.metadata:
        for name in ("gt", "ge", "lt", "le"):
            if getattr(item, name, None) is not None:
                bounds[name] = getattr(item, name)
    if not bounds:
        return ""
    low = bounds.get("ge", bounds.get("gt"))
    high = bounds.get("le", bounds.get("lt"))
    if "ge" in bounds and "le" in bounds:
        return f"{_number(low)} to {_number(high)}"
    parts = []
    if low is not None:
        parts.append(("at least " if "ge" in bounds else "more than ") + _number(low))
    if high is not None:
        parts.append(("at most " if "le" in bounds else "less than ") + _number(high))
    return " and ".join(parts)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_lock = threading.RLock()
_runtime: dict[str, Any] = {}
_cached: LoadedConfig | None = None


def configure(
    overrides: Mapping[str, Any] | None = None, /, **sections: Mapping[str, Any]
) -> Settings:
    """Override settings at run time (the highest-precedence source) and return the result.

    ``dspex.configure(store={"backend": "file"})`` and
    ``dspex.configure({"store.backend": "file"})`` are equivalent. The new values are
    validated at once; on error nothing changes.
    """
    global _cached
    flat = flatten_overrides(overrides, sections)
    with _lock:
        candidate = {**_runtime, **flat}
        loaded = load(runtime=candidate)
        _runtime.clear()
        _runtime.update(candidate)
        _cached = loaded
        return loaded.settings


def _loaded() -> LoadedConfig:
    global _cached
    with _lock:
        if _cached is None:
            _cached = load(runtime=_runtime)
        return _cached


def get_settings() -> Settings:
    """The effective settings (loaded once, then cached until configure() or reset())."""
    return _loaded().settings


def explain() -> tuple[SettingValue, ...]:
    """Every effective setting with the source it came from."""
    return _loaded().values


def reset() -> None:
    """Forget configure() overrides and re-read file and environment on next use."""
    global _cached
    with _lock:
        _runtime.clear()
        _cached = None


@contextmanager
def overrides(
    overrides: Mapping[str, Any] | None = None, /, **sections: Mapping[str, Any]
) -> Iterator[Settings]:
    """Apply :func:`configure` overrides for the duration of a ``with`` block."""
    global _cached
    with _lock:
        saved = dict(_runtime)
        saved_cache = _cached
    try:
        yield configure(overrides, **sections)
    finally:
        with _lock:
            _runtime.clear()
            _runtime.update(saved)
            _cached = saved_cache
