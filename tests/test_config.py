"""Settings: precedence, environment sections, and clear errors for bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import dspex
from dspex import config
from dspex.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def value_of(loaded: config.LoadedConfig, key: str) -> config.SettingValue:
    return next(v for v in loaded.values if v.key == key)


def test_defaults_when_nothing_is_configured(tmp_path):
    loaded = config.load(cwd=tmp_path, environ={})
    assert loaded.settings.store.backend == "file"  # ./dspex_results: one store for all
    assert loaded.settings.workers.adapter == "thread"
    assert loaded.settings.ui.host == "127.0.0.1"
    assert loaded.config_file is None
    assert {v.source for v in loaded.values} == {"default"}


def test_the_test_environment_defaults_to_the_memory_store(tmp_path):
    loaded = config.load(cwd=tmp_path, environ={"DSPEX_ENV": "test"})
    assert loaded.settings.store.backend == "memory"
    assert value_of(loaded, "store.backend").source == "default for DSPEX_ENV=test"
    write(tmp_path / "dspex.toml", '[env.test.store]\nbackend = "file"\n')
    assert config.load(cwd=tmp_path, environ={"DSPEX_ENV": "test"}).settings.store.backend == (
        "file"
    )  # anything configured wins


def test_precedence_defaults_file_environment_configure(tmp_path):
    write(
        tmp_path / "dspex.toml",
        '[workers]\npool_size = 3\npool_startup_timeout = 30\n[store]\nbackend = "file"\n',
    )
    environ = {"DSPEX_WORKERS_POOL_SIZE": "5", "DSPEX_STORE_BACKEND": "memory"}
    loaded = config.load(cwd=tmp_path, environ=environ, runtime={"workers.pool_size": 7})
    assert loaded.settings.workers.pool_size == 7
    assert value_of(loaded, "workers.pool_size").source == "configure()"
    assert loaded.settings.store.backend == "memory"
    assert value_of(loaded, "store.backend").source == "environment DSPEX_STORE_BACKEND"
    assert loaded.settings.workers.pool_startup_timeout == 30.0
    assert value_of(loaded, "workers.pool_startup_timeout").source.endswith("dspex.toml [workers]")
    assert value_of(loaded, "workers.worker_init_timeout").source == "default"


def test_pyproject_tool_table_is_read_from_a_parent_directory(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n[tool.dspex.ui]\nport = 9001\n')
    child = tmp_path / "notebooks" / "deep"
    child.mkdir(parents=True)
    loaded = config.load(cwd=child, environ={})
    assert loaded.settings.ui.port == 9001
    assert loaded.config_file == tmp_path / "pyproject.toml"


def test_pyproject_without_tool_dspex_is_skipped(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    assert config.load(cwd=tmp_path, environ={}).config_file is None


def test_environment_section_overrides_the_base(tmp_path):
    write(
        tmp_path / "dspex.toml",
        '[store]\nbackend = "file"\npath = "dev-results"\n'
        '[env.prod.store]\nbackend = "sql"\nurl = "sqlite:///prod.db"\n',
    )
    dev = config.load(cwd=tmp_path, environ={})
    prod = config.load(cwd=tmp_path, environ={"DSPEX_ENV": "prod"})
    assert dev.settings.store.backend == "file"
    assert prod.settings.store.backend == "sql"
    assert prod.settings.store.url == "sqlite:///prod.db"
    assert prod.settings.store.path == Path("dev-results")  # base still applies
    assert "[env.prod.store]" in value_of(prod, "store.backend").source
    assert prod.env == "prod"


def test_unknown_environment_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown environment 'staging'.*dev, test, prod"):
        config.load(cwd=tmp_path, environ={"DSPEX_ENV": "staging"})


def test_unknown_key_names_the_file_and_the_closest_setting(tmp_path):
    path = write(tmp_path / "dspex.toml", "[workers]\npool_sise = 4\n")
    with pytest.raises(ConfigError) as info:
        config.load(cwd=tmp_path, environ={})
    message = str(info.value)
    assert str(path) in message
    assert "'workers.pool_sise'" in message
    assert "did you mean 'workers.pool_size'" in message
    assert info.value.key == "workers.pool_sise"


def test_unknown_section_is_refused(tmp_path):
    write(tmp_path / "dspex.toml", "[worker]\npool_size = 4\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'worker.pool_size'.*workers.pool_size"):
        config.load(cwd=tmp_path, environ={})


def test_wrong_type_names_source_key_and_value(tmp_path):
    write(tmp_path / "dspex.toml", '[workers]\npool_size = "many"\n')
    with pytest.raises(ConfigError) as info:
        config.load(cwd=tmp_path, environ={})
    assert re.search(
        r"dspex.toml \[workers\]: workers.pool_size = 'many': .*integer", str(info.value)
    )


def test_bad_enum_value_lists_the_allowed_ones(tmp_path):
    with pytest.raises(ConfigError) as info:
        config.load(cwd=tmp_path, environ={"DSPEX_WORKERS_ADAPTER": "fork"})
    message = str(info.value)
    assert "environment DSPEX_WORKERS_ADAPTER" in message
    assert "'fork'" in message
    assert "thread | process | ray" in message


def test_out_of_range_value_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="evaluation.harness_pool_size = '0'"):
        config.load(cwd=tmp_path, environ={"DSPEX_EVALUATION_HARNESS_POOL_SIZE": "0"})


def test_sql_backend_needs_a_url(tmp_path):
    with pytest.raises(ConfigError, match="store.url is required"):
        config.load(cwd=tmp_path, environ={"DSPEX_STORE_BACKEND": "sql"})


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path / "dspex.toml", "[store\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ": not valid TOML"):
        config.load(cwd=tmp_path, environ={})


def test_dspex_config_variable_points_at_a_file(tmp_path):
    path = write(tmp_path / "elsewhere.toml", "[ui]\nport = 9100\n")
    assert config.load(cwd=Path("/"), environ={"DSPEX_CONFIG": str(path)}).settings.ui.port == 9100
    with pytest.raises(ConfigError, match="DSPEX_CONFIG names"):
        config.load(cwd=tmp_path, environ={"DSPEX_CONFIG": str(tmp_path / "missing.toml")})


def test_python_path_defaults_to_python_executable(tmp_path):
    loaded = config.load(cwd=tmp_path, environ={"PYTHON_EXECUTABLE": "/opt/py/bin/python"})
    assert loaded.settings.workers.python_path == "/opt/py/bin/python"
    assert value_of(loaded, "workers.python_path").source == "environment PYTHON_EXECUTABLE"


def test_configure_validates_at_once_and_changes_nothing_on_error():
    dspex.configure(workers={"pool_size": 3})
    with pytest.raises(ConfigError, match="configure\\(\\)"):
        dspex.configure({"workers.pool_size": -1})
    assert dspex.get_settings().workers.pool_size == 3
    with pytest.raises(ConfigError, match="did you mean 'store.backend'"):
        dspex.configure(store={"backnd": "file"})


def test_configure_accepts_sections_or_dotted_keys_and_reset_forgets():
    dspex.configure(store={"backend": "file", "path": "a"})
    dspex.configure({"store.path": "b"})
    assert dspex.get_settings().store.backend == "file"
    assert dspex.get_settings().store.path == Path("b")
    config.reset()
    assert dspex.get_settings().store.backend == "memory"


def test_overrides_context_restores_previous_settings():
    dspex.configure(ui={"port": 1234})
    with config.overrides(ui={"port": 4321}) as settings:
        assert settings.ui.port == 4321
        assert dspex.get_settings().ui.port == 4321
    assert dspex.get_settings().ui.port == 1234


def test_secret_token_is_masked_in_explain(tmp_path):
    loaded = config.load(cwd=tmp_path, environ={"DSPEX_UI_TOKEN": "hunter2"})
    assert loaded.settings.ui.token == "hunter2"
    assert value_of(loaded, "ui.token").value == "********"


def test_a_refused_value_never_shows_a_secret(tmp_path):
    environ = {
        "DSPEX_EXPORT_OTLP_ENDPOINT": "https://user:hunter2@otel.example/v1/traces",
        "DSPEX_UI_PORT": "http://u:hunter3@x",
    }
    with pytest.raises(ConfigError) as info:
        config.load(cwd=tmp_path, environ=environ)
    message = str(info.value)
    assert "export.otlp_endpoint = 'https://user:***@otel.example/v1/traces'" in message
    assert "carries a credential" in message and "OTEL_EXPORTER_OTLP_TRACES_HEADERS" in message
    assert "ui.port = 'http://u:***@x'" in message
    assert "hunter2" not in message and "hunter3" not in message


def test_otlp_endpoint_must_be_an_http_url(tmp_path):
    with pytest.raises(ConfigError, match=r"export.otlp_endpoint = 'localhost:4318'.*http://"):
        config.load(cwd=tmp_path, environ={"DSPEX_EXPORT_OTLP_ENDPOINT": "localhost:4318"})
    loaded = config.load(cwd=tmp_path, environ={"DSPEX_EXPORT_OTLP_ENDPOINT": "http://h:6006"})
    assert loaded.settings.export.otlp_endpoint == "http://h:6006"
    assert loaded.settings.export.otlp_project == "dspex"


def test_unknown_env_vars_are_reported_but_test_variables_are_not():
    names = config.unknown_env_vars(
        {"DSPEX_STORE_BACKNED": "x", "DSPEX_TEST_POSTGRES_URL": "y", "DSPEX_ENV": "dev"}
    )
    assert names == ["DSPEX_STORE_BACKNED"]
