"""Every input that could make dspex recurse, read forever or overflow a backend has a
limit, and meeting it ends in one clear error that names the number, exit 1, no traceback.

The limits: a config file's nesting depth (16), its size (1 MiB) and its type (a regular
file: a directory, FIFO, device or symbolic link loop is refused, found as ./dspex.toml or
named by DSPEX_CONFIG), the range of every numeric setting, and the length of every list
filter of a query (100, refused before any backend sees the query; the conformance suite
checks it on every backend).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dspex import ConfigError, InvalidQueryError, ResultStore, config
from dspex.cli import main
from dspex.config import Settings, numeric_range
from dspex.config.sources import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, env_key
from dspex.store.query import MAX_LIST_FILTER

COMMANDS = (["config", "check"], ["config", "show"], ["experiments", "ls"])


def run(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, args, env=env)


def refused_everywhere(message: str, env: dict[str, str] | None = None) -> None:
    """Each command that reads the configuration exits 1 with ``message`` and no traceback."""
    for args in COMMANDS:
        result = run(args, env)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert not isinstance(result.exception, RecursionError | OSError)


# -- the config file -----------------------------------------------------------------------


def test_a_file_nested_100000_levels_deep_is_refused_with_the_limit(tmp_path):
    (tmp_path / "dspex.toml").write_text("a = " + "[" * 100_000 + "\n")
    refused_everywhere(f"nest more than {MAX_CONFIG_DEPTH} levels deep")
    refused_everywhere(f"at most {MAX_CONFIG_DEPTH}")


@pytest.mark.parametrize("depth", [MAX_CONFIG_DEPTH + 1, 40])
def test_a_file_nested_past_the_limit_says_how_deep_it_is(tmp_path, depth):
    arrays = depth - 2  # the file's table and [store] are two levels
    (tmp_path / "dspex.toml").write_text("[store]\nx = " + "[" * arrays + "]" * arrays + "\n")
    with pytest.raises(ConfigError, match=f"nest {depth} levels deep; .* at most 16"):
        config.load(cwd=tmp_path, environ={})


def test_dotted_keys_count_as_nesting_too(tmp_path):
    (tmp_path / "dspex.toml").write_text(".".join(["k"] * 5000) + " = 1\n")
    with pytest.raises(ConfigError, match="nest 5000 levels deep"):
        config.load(cwd=tmp_path, environ={})


def test_a_file_at_the_depth_limit_is_read(tmp_path):
    arrays = MAX_CONFIG_DEPTH - 2
    (tmp_path / "dspex.toml").write_text("[ui]\nhost = " + "[" * arrays + "]" * arrays + "\n")
    problems = config.check(cwd=tmp_path, environ={})
    assert len(problems) == 1 and "ui.host" in problems[0] and "valid string" in problems[0]


def test_a_file_over_one_mib_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "dspex.toml"
    path.write_text('[ui]\nhost = "' + "x" * MAX_CONFIG_BYTES + '"\n')
    refused_everywhere(f"larger than {MAX_CONFIG_BYTES:,} bytes (1 MiB)")


def _not_a_file(kind: str, path: Path) -> str:
    """Make ``path`` a ``kind`` that is not a regular file; return how errors call it."""
    if kind == "directory":
        path.mkdir()
        return "is a directory, not a file"
    if kind == "fifo":
        os.mkfifo(path)
        return "is a FIFO (named pipe), not a file"
    if kind == "device":
        path.symlink_to("/dev/zero")
        return "is a character device, not a file"
    if kind == "loop":
        path.symlink_to(path.name)
        return "is a symbolic link loop"
    assert kind == "dangling"
    path.symlink_to("nowhere.toml")
    return "is a symbolic link to a missing file"


KINDS = ["directory", "fifo", "device", "loop", "dangling"]


@pytest.mark.timeout(60)  # a FIFO opened for reading would block forever
@pytest.mark.parametrize("kind", KINDS)
def test_a_dspex_toml_that_is_not_a_file_is_an_error_not_ignored(tmp_path, kind):
    phrase = _not_a_file(kind, tmp_path / "dspex.toml")
    refused_everywhere(f"{tmp_path / 'dspex.toml'} {phrase}")
    result = run(["config", "check"])
    assert "configuration is valid" not in result.output


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_the_same_through_dspex_config_is_the_same_error(tmp_path, kind):
    target = tmp_path / "elsewhere.toml"
    phrase = _not_a_file(kind, target)
    refused_everywhere(
        f"DSPEX_CONFIG names {str(target)!r}, which {phrase}", env={"DSPEX_CONFIG": str(target)}
    )


def test_a_pyproject_toml_that_is_a_directory_is_named_too(tmp_path):
    (tmp_path / "pyproject.toml").mkdir()
    with pytest.raises(ConfigError, match="pyproject.toml is a directory, not a file"):
        config.load(cwd=tmp_path, environ={})


def test_a_pyproject_without_dspex_settings_is_not_judged_by_dspex_limits(tmp_path):
    deep = "[" * 30 + "]" * 30
    (tmp_path / "pyproject.toml").write_text(f"[tool.other]\nx = {deep}\n")
    assert config.load(cwd=tmp_path, environ={}).config_file is None


# -- numeric settings ----------------------------------------------------------------------


def _numeric_settings() -> list[tuple[str, Any]]:
    found = []
    for section, section_field in Settings.model_fields.items():
        model = section_field.annotation
        assert isinstance(model, type)
        for name, field in model.model_fields.items():
            types = {field.annotation} | set(getattr(field.annotation, "__args__", ()))
            if types & {int, float} and bool not in types:
                found.append((f"{section}.{name}", field))
    return found


NUMERIC = _numeric_settings()


def test_the_numeric_settings_are_found():
    keys = [key for key, _ in NUMERIC]
    assert {"workers.pool_size", "ui.port", "analysis.alpha", "workers.task_timeout"} <= set(keys)


@pytest.mark.parametrize(("key", "field"), NUMERIC, ids=[key for key, _ in NUMERIC])
def test_every_numeric_setting_has_a_range_and_refuses_values_past_it(key, field):
    allowed = numeric_range(field)
    high = next(
        (getattr(m, n) for m in field.metadata for n in ("le", "lt") if getattr(m, n, None)),
        None,
    )
    assert high is not None, f"{key} has no upper bound"
    assert allowed, f"{key} has no range"
    for value in (str(high * 10 + 1), "9" * 30, "1e999", "-1e999"):
        name = env_key(key)
        with pytest.raises(ConfigError) as caught:
            config.load(cwd=Path("."), environ={name: value})
        assert f"(allowed: {allowed})" in str(caught.value)
        assert name in str(caught.value)


def test_a_pool_of_99999999999999999999999_workers_is_refused_by_every_command():
    refused_everywhere(
        "workers.pool_size = '99999999999999999999999': Input should be less than or equal "
        "to 4096 (allowed: 1 to 4096)",
        env={"DSPEX_WORKERS_POOL_SIZE": "99999999999999999999999"},
    )


def test_a_value_too_long_to_show_is_shown_cut():
    result = run(["config", "check"], env={"DSPEX_WORKERS_POOL_SIZE": "9" * 6000})
    assert result.exit_code == 1
    assert "(6,002 characters)" in result.output and len(result.output) < 1000


# -- list filters (every backend: tests/store/test_conformance.py) --------------------------


def test_a_status_filter_longer_than_the_limit_is_refused_before_the_query():
    store = ResultStore.open("memory://limits")
    for size in (MAX_LIST_FILTER + 1, 65_536):
        with pytest.raises(InvalidQueryError, match=f"names {size:,} statuses; at most 100"):
            store.query_experiments({"status": ["completed"] * size})
    assert store.query_experiments({"status": ["completed"] * MAX_LIST_FILTER}) == []


def test_the_command_line_refuses_it_with_exit_1(tmp_path):
    args = ["experiments", "ls", "--store", f"file://{tmp_path / 'store'}"]
    ResultStore.open(f"file://{tmp_path / 'store'}").connect().close()
    statuses = [part for _ in range(MAX_LIST_FILTER + 1) for part in ("--status", "completed")]
    result = run([*args, *statuses])
    assert result.exit_code == 1, result.output
    assert f"names {MAX_LIST_FILTER + 1} statuses; at most {MAX_LIST_FILTER}" in result.output
    assert "Traceback" not in result.output
