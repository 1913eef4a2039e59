"""Secrets never leave the process (one redaction, every URL form), and configuration
input that is not what dspex expects ends in a ConfigError naming it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import dspex
from dspex import ConfigError, ResultStore, StoreUnavailable, config
from dspex.cli import main
from dspex.redact import redact, redact_text, redact_url
from dspex.view.web import check_bind, create_app

# (URL, the secret in it, what it becomes)
URLS = [
    ("postgresql://root:pa/ss@db:5432/r", "pa/ss", "postgresql://root:***@db:5432/r"),
    ("postgresql://root:p@ss@db/r", "p@ss", "postgresql://root:***@db/r"),
    ("postgresql://root:p@s/s@db/r?sslmode=require", "p@s/s",
     "postgresql://root:***@db/r?sslmode=require"),
    ("postgresql://root:a?b@db/r", "a?b", "postgresql://root:***@db/r"),
    ("postgresql://root:a#b@db/r", "a#b", "postgresql://root:***@db/r"),
    ("postgresql://root:a:b@db/r", "a:b", "postgresql://root:***@db/r"),
    ("postgresql://u:p%40ss@h/db", "p%40ss", "postgresql://u:***@h/db"),
    ("postgresql+psycopg://u:hunter2@h/db", "hunter2", "postgresql+psycopg://u:***@h/db"),
    ("postgresql://u@h/db?password=hunter2&sslmode=require", "hunter2",
     "postgresql://u@h/db?password=***&sslmode=require"),
    ("postgresql://h/db?user=u&PASSWORD=hunter2", "hunter2",
     "postgresql://h/db?user=u&PASSWORD=***"),
    ("postgresql:///db?host=/tmp&password=hunter2", "hunter2",
     "postgresql:///db?host=/tmp&password=***"),
    ("postgresql://u:pw1@h/db?sslpassword=pw2", "pw", "postgresql://u:***@h/db?sslpassword=***"),
    ("postgresql://u:hunter2@h1:5432,h2:5433/db", "hunter2", "postgresql://u:***@h1:5432,h2:5433/db"),
    ("postgresql://u:hunter2@[::1]:5432/db", "hunter2", "postgresql://u:***@[::1]:5432/db"),
    ("postgresql://u:hunter2@h/db#frag", "hunter2", "postgresql://u:***@h/db#frag"),
    ("redis://:hunter2@h:6379/0", "hunter2", "redis://:***@h:6379/0"),
    ("https://tok3n@host/v1", "tok3n", "https://***@host/v1"),
    ("https://u:hunter2@host/v1", "hunter2", "https://u:***@host/v1"),
]  # fmt: skip
PLAIN = [
    "sqlite:////abs/x.db",
    "file:///abs/dir",
    "memory://x",
    "postgresql://u@h/db?application_name=a@b",
    "not a url",
]


@pytest.mark.parametrize(("url", "secret", "shown"), URLS)
def test_every_url_form_loses_its_password(url, secret, shown):
    assert redact_url(url) == shown
    assert secret not in redact_text(f"cannot open {url}: refused")
    assert secret not in json.dumps(redact({"store": {"url": url}, "note": f"at {url}"}))


@pytest.mark.parametrize("url", PLAIN)
def test_urls_without_secrets_are_unchanged(url):
    assert redact_url(url) == url


def test_config_show_prints_no_password_and_no_token(tmp_path):
    url = "postgresql://root:pa/ss@db:5432/r?password=hunter2"
    env = {"DSPEX_STORE_BACKEND": "sql", "DSPEX_STORE_URL": url, "DSPEX_UI_TOKEN": "tok-123"}
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 0, result.output
        for secret in ("pa/ss", "hunter2", "tok-123"):
            assert secret not in result.output
        assert "postgresql://root:***@db:5432/r?password=***" in result.output


def test_the_configuration_stored_with_an_experiment_holds_no_secret(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}?password=hunter2"
    monkeypatch.setenv("DSPEX_UI_TOKEN", "tok-123")
    dspex.config.reset()
    store = ResultStore.open("memory://")
    with dspex.experiment("secrets", program_name="qa", store=store) as exp:
        pass
    snapshot = store.get_experiment(exp.id).environment.config
    assert snapshot["ui"]["token"] == "********"
    dspex.configure(store={"backend": "sql", "url": url})
    with dspex.experiment("secrets", program_name="qa", store=store) as exp:
        pass
    stored = store.get_experiment(exp.id).environment.config
    assert stored["store"]["url"].endswith("x.db?password=***")
    assert "hunter2" not in json.dumps(stored) and "tok-123" not in json.dumps(stored)


def test_store_errors_name_the_url_without_its_password():
    url = "postgresql://alice:p@ss/w0rd@127.0.0.1:1/nowhere?password=hunter2"
    with pytest.raises(StoreUnavailable) as caught:
        ResultStore.open(url).connect()
    message = str(caught.value)
    assert "p@ss/w0rd" not in message and "hunter2" not in message
    assert "alice:***@127.0.0.1:1/nowhere?password=***" in message


@pytest.mark.parametrize("token", [" ", "\t\n", ""])
def test_a_blank_ui_token_is_no_token(token, tmp_path):
    if token:
        with pytest.raises(ConfigError, match="ui.token"):
            config.load(cwd=tmp_path, environ={"DSPEX_UI_TOKEN": token})
        with pytest.raises(ConfigError, match="blank"):
            check_bind("127.0.0.1", token)
        with pytest.raises(ConfigError, match="blank"):
            create_app(ResultStore.open("memory://"), token=token)
        (tmp_path / "dspex.toml").write_text(f"[ui]\ntoken = {json.dumps(token)}\n")
        with pytest.raises(ConfigError, match="ui.token"):
            config.load(cwd=tmp_path, environ={})
    else:  # an empty variable means unset
        assert config.load(cwd=tmp_path, environ={"DSPEX_UI_TOKEN": ""}).settings.ui.token is None
    with pytest.raises(ConfigError, match="blank|without an access token"):
        check_bind("0.0.0.0", token or None)  # never served on a public address
    result = CliRunner().invoke(main, ["ui", "--host", "0.0.0.0", "--token", token or " "])
    assert result.exit_code == 1 and "Traceback" not in result.output


# -- configuration input ------------------------------------------------------------------


def test_a_config_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "dspex.toml"
    path.write_bytes(b'[store]\npath = "r\xe9sultats"\n')  # Latin-1, not UTF-8
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        config.load(cwd=tmp_path, environ={})
    assert str(path) in str(caught.value)
    result = CliRunner().invoke(main, ["config", "check"])
    assert result.exit_code == 1 and "not UTF-8" in result.output
    assert "Traceback" not in result.output


def test_an_environment_that_is_not_a_table_is_named(tmp_path):
    (tmp_path / "dspex.toml").write_text("[env]\nprod = 5\n")
    with pytest.raises(ConfigError, match=r"prod = 5 must be a table of settings"):
        config.load(cwd=tmp_path, environ={"DSPEX_ENV": "prod"})
    result = CliRunner().invoke(main, ["config", "check"])
    assert result.exit_code == 1 and "must be a table" in result.output


def test_sql_urls_pass_config_check_only_when_the_store_can_use_them(tmp_path):
    def sql(url: str) -> config.LoadedConfig:
        environ = {"DSPEX_STORE_BACKEND": "sql", "DSPEX_STORE_URL": url}
        return config.load(cwd=tmp_path, environ=environ)

    assert sql("postgresql+psycopg://u@h/db").settings.store.url == "postgresql+psycopg://u@h/db"
    for url in ("postgresql+asyncpg://u:pw@h/db", "mysql://u:pw@h/db"):
        with pytest.raises(ConfigError, match="is not one dspex connects with") as caught:
            sql(url)
        assert "pw" not in str(caught.value)
