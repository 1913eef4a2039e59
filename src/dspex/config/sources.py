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
import errno
import os
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dspex.config.schema import setting_keys
from dspex.errors import ConfigError

__all__ = [
    "ENVIRONMENTS",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_DEPTH",
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
MAX_CONFIG_BYTES = 1_048_576
"""A config file larger than this (1 MiB) is refused before it is parsed."""
MAX_CONFIG_DEPTH = 16
"""Tables, arrays and inline tables nest at most this deep in a config file (dspex's own
settings use 4: ``[env.prod.store] url = ...``)."""


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
    """The config file that applies to ``start`` (see the module docstring).

    Anything named ``dspex.toml`` (or ``pyproject.toml``) on the way up that is not a
    readable file, such as a directory, a FIFO or a symbolic link loop, is an error, as
    through ``DSPEX_CONFIG``: skipping it would silently apply other settings.
    """
    explicit = environ.get("DSPEX_CONFIG")
    if explicit:
        path = Path(explicit)
        try:
            data = _read_bytes(path)
        except _Unusable as exc:
            raise ConfigError(
                f"DSPEX_CONFIG names {str(path)!r}, which {exc}; point it at a dspex.toml "
                "or unset it",
                source="environment DSPEX_CONFIG",
            ) from None
        return _parse_file(path, data)
    for directory in (start, *start.parents):
        for name in ("dspex.toml", "pyproject.toml"):
            found = _found_file(directory / name)
            if found is not None:
                return found
    return None


def _found_file(path: Path) -> ConfigFile | None:
    try:
        os.lstat(path)
    except OSError:
        return None  # nothing of that name here
    try:
        data = _read_bytes(path)
    except _Unusable as exc:
        fix = exc.fix or (
            "dspex reads its settings from a file of that name; rename or remove it, or set "
            "DSPEX_CONFIG to the file to use"
        )
        raise ConfigError(f"{path} {exc}: {fix}", source=str(path)) from None
    return _parse_file(path, data)


class _Unusable(Exception):
    """Why a path cannot be read as a config file (a phrase: "is a directory, not a file"),
    and what to do when that is not the usual "use another file"."""

    def __init__(self, reason: str, fix: str | None = None) -> None:
        super().__init__(reason)
        self.fix = fix


_NOT_FILES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _read_bytes(path: Path) -> bytes:
    """The content of the regular file ``path``, at most :data:`MAX_CONFIG_BYTES`.

    The type is checked on the open descriptor, which is opened without blocking: a FIFO
    or a device never makes dspex wait or read forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _Unusable(_os_reason(path, exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        for test, kind in _NOT_FILES:
            if test(mode):
                raise _Unusable(f"is {kind}, not a file")
        data = b""
        while len(data) <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise _Unusable(_os_reason(path, exc)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise _Unusable(
            f"is larger than {MAX_CONFIG_BYTES:,} bytes (1 MiB), the most a dspex "
            "configuration file may hold",
            fix="keep dspex's settings in a smaller file",
        )
    return data


def _os_reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symbolic link loop"
    if exc.errno == errno.ENOENT:
        return "is a symbolic link to a missing file" if path.is_symlink() else "does not exist"
    return f"cannot be read: {exc.strerror or exc}"


def _parse_file(path: Path, data: bytes) -> ConfigFile | None:
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); TOML files are UTF-8",
            source=str(path),
        ) from exc
    except RecursionError:
        raise _too_deep(path, f"more than {MAX_CONFIG_DEPTH}") from None
    found = ConfigFile(path, table, "")
    if path.name == "pyproject.toml":  # only [tool.dspex] is ours to judge
        tool = table.get("tool", {})
        dspex_table = tool.get("dspex") if isinstance(tool, dict) else None
        if dspex_table is None:
            return None
        found = ConfigFile(path, dspex_table, "tool.dspex.")
    depth = _depth(found.table)
    if depth > MAX_CONFIG_DEPTH:
        raise _too_deep(path, str(depth))
    return found


def _too_deep(path: Path, depth: str) -> ConfigError:
    return ConfigError(
        f"{path}: tables and arrays nest {depth} levels deep; a dspex configuration file "
        f"nests at most {MAX_CONFIG_DEPTH}",
        source=str(path),
    )


def _depth(value: Any) -> int:
    """How deep tables and arrays nest in ``value`` (without recursion: any depth)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in item)
    return deepest


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
