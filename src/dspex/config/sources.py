"""Where settings come from, in order of precedence (later wins).

1. defaults (``dspex/config/schema.py``);
2. a config file: the file named by ``DSPEX_CONFIG``, else the nearest ``dspex.toml``,
   else the nearest ``pyproject.toml`` with a ``[tool.dspex]`` table, searching from the
   current directory upwards; the section ``[env.<DSPEX_ENV>]`` of that file overrides
   its base sections;
3. environment variables ``DSPEX_<SECTION>_<KEY>`` (``DSPEX_STORE_BACKEND=file``);
4. ``dspex.configure(...)`` at run time.

Each source yields ``{dotted key: SourcedValue}``; nothing here validates types (that
is the schema's job) but unknown keys are reported with the closest valid one.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dspex.config.schema import setting_keys
from dspex.errors import ConfigError

__all__ = [
    "ENVIRONMENTS",
    "ConfigFile",
    "SourcedValue",
    "env_source",
    "file_source",
    "find_config_file",
    "flatten_overrides",
]

ENVIRONMENTS = ("dev", "test", "prod")
ENV_PREFIX = "DSPEX_"
# DSPEX_* variables that are not settings and so are never reported as unknown.
RESERVED_ENV = {"DSPEX_ENV", "DSPEX_CONFIG"}
RESERVED_ENV_PREFIXES = ("DSPEX_TEST_", "DSPEX_BENCH_")


@dataclass(frozen=True)
class SourcedValue:
    """A raw setting value and where it came from (for `dspex config show`)."""

    value: Any
    source: str


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    table: dict[str, Any]
    prefix: str  # "" for dspex.toml, "tool.dspex." for pyproject.toml


def closest_key(key: str) -> str | None:
    matches = difflib.get_close_matches(key, list(setting_keys()), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_key_error(key: str, source: str) -> ConfigError:
    hint = closest_key(key)
    if hint:
        suggestion = f"; did you mean {hint!r}?"
    else:  # no close match: name what the section (or the whole schema) offers
        section = key.split(".", 1)[0]
        same = [k for k in setting_keys() if k.startswith(section + ".")]
        sections = sorted({k.split(".", 1)[0] for k in setting_keys()})
        suggestion = (
            f" (settings of [{section}]: {', '.join(same)})"
            if same
            else f" (sections: {', '.join(sections)}; `dspex config show` lists every setting)"
        )
    return ConfigError(
        f"{source}: unknown setting {key!r}{suggestion}",
        key=key,
        source=source,
    )


def find_config_file(start: Path, environ: Mapping[str, str]) -> ConfigFile | None:
    """The config file that applies to ``start`` (see the module docstring)."""
    explicit = environ.get("DSPEX_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"DSPEX_CONFIG names {str(path)!r}, which is not a file; "
                "point it at a dspex.toml or unset it",
                source="environment DSPEX_CONFIG",
            )
        return _read_file(path)
    for directory in (start, *start.parents):
        candidate = directory / "dspex.toml"
        if candidate.is_file():
            return _read_file(candidate)
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            found = _read_file(pyproject)
            if found is not None:
                return found
    return None


def _read_file(path: Path) -> ConfigFile | None:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); TOML files are UTF-8",
            source=str(path),
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}", source=str(path)) from exc
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("dspex")
        if table is None:
            return None
        return ConfigFile(path, table, "tool.dspex.")
    return ConfigFile(path, data, "")


Problems = list[ConfigError] | None
"""Where a source puts the problems it finds instead of raising the first (config check)."""


def _report(error: ConfigError, problems: Problems) -> None:
    if problems is None:
        raise error
    problems.append(error)


def _walk_sections(
    table: Mapping[str, Any], where: str, file: ConfigFile, problems: Problems = None
) -> Iterator[tuple[str, Any, str]]:
    """Yield (dotted key, value, source label) for a table of ``[section] key = value``."""
    known = setting_keys()
    for section, body in table.items():
        label = f"{file.path} [{file.prefix}{where}{section}]"
        if not isinstance(body, dict):
            where_section = f"{file.path} [{file.prefix}{where.rstrip('.')}]"
            _report(unknown_key_error(section, where_section), problems)
            continue
        for key, value in body.items():
            dotted = f"{section}.{key}"
            if dotted not in known:
                _report(unknown_key_error(dotted, label), problems)
                continue
            yield dotted, value, label


def file_source(
    file: ConfigFile | None, env_name: str | None, problems: Problems = None
) -> dict[str, SourcedValue]:
    """Settings from ``file``: its base sections, then ``[env.<env_name>]`` over them.

    Unknown keys raise :class:`ConfigError`, or are appended to ``problems`` when given.
    """
    if file is None:
        return {}
    base = dict(file.table)
    envs = base.pop("env", {})
    if not isinstance(envs, dict):
        raise ConfigError(
            f"{file.path}: [{file.prefix}env] must be a table of environments "
            f"({', '.join(ENVIRONMENTS)})",
            source=str(file.path),
        )
    for name, table in envs.items():  # [env] prod = 5 instead of [env.prod.store]
        if not isinstance(table, dict):
            raise ConfigError(
                f"{file.path} [{file.prefix}env]: {name} = {table!r} must be a table of "
                f"settings, like [{file.prefix}env.{name}.store]",
                source=str(file.path),
            )
    for name in envs:
        if name not in ENVIRONMENTS:
            raise ConfigError(
                f"{file.path} [{file.prefix}env.{name}]: unknown environment {name!r}; "
                f"valid environments: {', '.join(ENVIRONMENTS)}",
                source=str(file.path),
            )
    values = {k: SourcedValue(v, s) for k, v, s in _walk_sections(base, "", file, problems)}
    if env_name and env_name in envs:
        env_table = envs[env_name]
        for key, value, label in _walk_sections(env_table, f"env.{env_name}.", file, problems):
            values[key] = SourcedValue(value, label)
    return values


def env_key(dotted: str) -> str:
    """The environment variable for a dotted setting: store.url -> DSPEX_STORE_URL."""
    return ENV_PREFIX + dotted.replace(".", "_").upper()


def env_source(environ: Mapping[str, str]) -> dict[str, SourcedValue]:
    """Settings from ``DSPEX_*`` environment variables (unknown ones are ignored here)."""
    values = {}
    for dotted in setting_keys():
        name = env_key(dotted)
        if name in environ:
            raw = environ[name]
            values[dotted] = SourcedValue(None if raw == "" else raw, f"environment {name}")
    return values


def unknown_env_vars(environ: Mapping[str, str]) -> list[str]:
    """``DSPEX_*`` variables that name no setting (reported by `dspex config check`)."""
    known = {env_key(k) for k in setting_keys()} | RESERVED_ENV
    return sorted(
        name
        for name in environ
        if name.startswith(ENV_PREFIX)
        and name not in known
        and not name.startswith(RESERVED_ENV_PREFIXES)
    )


def closest_env_var(name: str) -> str | None:
    """The setting's variable closest to a mistyped one: DSPEX_STORE_BAKEND -> ..._BACKEND."""
    known = [env_key(k) for k in setting_keys()] + sorted(RESERVED_ENV)
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return matches[0] if matches else None


def flatten_overrides(
    overrides: Mapping[str, Any] | None, sections: Mapping[str, Any]
) -> dict[str, Any]:
    """Turn ``configure({"store.backend": ...}, workers={...})`` into dotted keys."""
    flat: dict[str, Any] = {}
    known = setting_keys()
    for key, value in (overrides or {}).items():
        if key not in known:
            raise unknown_key_error(key, "configure()")
        flat[key] = value
    for section, body in sections.items():
        if not isinstance(body, Mapping):
            raise unknown_key_error(section, "configure()")
        for key, value in body.items():
            dotted = f"{section}.{key}"
            if dotted not in known:
                raise unknown_key_error(dotted, "configure()")
            flat[dotted] = value
    return flat


def current_env(environ: Mapping[str, str]) -> str | None:
    name = environ.get("DSPEX_ENV") or None
    if name is not None and name not in ENVIRONMENTS:
        raise ConfigError(
            f"environment DSPEX_ENV: unknown environment {name!r}; "
            f"valid environments: {', '.join(ENVIRONMENTS)}",
            key="DSPEX_ENV",
            source="environment DSPEX_ENV",
        )
    return name


def default_environ() -> Mapping[str, str]:
    return os.environ
