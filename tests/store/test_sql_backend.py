"""What only the sql backend does: migrations, connection errors, compressed trials."""

from __future__ import annotations

import re
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, select

from dspex import MissingExtraError, ResultStore, StoreUnavailable
from dspex.store import _sqltables, migrate
from dspex.store.backend import backend_for_url
from dspex.store.sql import engine_for_url
from tests.store.test_conformance import make_experiment


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_migrations_create_exactly_the_tables_the_code_uses(store_url_factory):
    url = store_url_factory()
    ResultStore.open(url, auto_migrate=True).connect().close()
    engine = engine_for_url(url)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head()
        context = MigrationContext.configure(conn, opts={"version_table": migrate.VERSION_TABLE})
        assert compare_metadata(context, _sqltables.metadata) == []
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_without_auto_migrate_an_empty_database_asks_for_migrate(store_url_factory):
    url = store_url_factory()
    store = ResultStore.open(url, auto_migrate=False)  # no I/O yet
    with pytest.raises(StoreUnavailable, match="dspex store migrate"):
        store.connect()
    before, after = backend_for_url(url).migrate()
    assert (before, after) == (None, migrate.head())
    ResultStore.open(url, auto_migrate=False).connect().close()


def test_an_unreachable_server_is_named_without_its_password():
    store = ResultStore.open("postgresql://alice:s3cret@127.0.0.1:1/nowhere")
    with pytest.raises(StoreUnavailable) as caught:
        store.connect()
    message = str(caught.value)
    assert "s3cret" not in message and "alice:***@127.0.0.1:1/nowhere" in message
    assert "refused" in message.lower() or "failed" in message.lower()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_trials_are_stored_compressed_one_row_each(store_url_factory):
    url = store_url_factory()
    store = ResultStore.open(url).connect()
    experiment = make_experiment(trials=3)
    store.archive_experiment(experiment)
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(_sqltables.trials.c.payload)).scalars().all()
    engine.dispose()
    assert len(rows) == 3
    assert sum(map(len, rows)) < sum(len(t.to_json_bytes()) for t in experiment.trials)


def test_a_missing_postgres_driver_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    store = ResultStore.open("postgresql://bob:pw@db.example/x")
    with pytest.raises(MissingExtraError, match=r"pip install 'dspex\[postgres\]'") as caught:
        store.connect()
    assert "pw@" not in str(caught.value)


def test_an_unopenable_sqlite_file_is_named(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    with pytest.raises(StoreUnavailable, match="unable to open") as caught:
        ResultStore.open(url).connect()
    assert url in str(caught.value)


def test_an_unwritable_file_store_is_named(tmp_path):
    (tmp_path / "blocker").write_text("a file, not a directory")
    url = f"file://{tmp_path / 'blocker' / 'store'}"
    with pytest.raises(StoreUnavailable) as caught:
        ResultStore.open(url).connect()
    assert url in str(caught.value)


def test_many_tags_are_matched_by_one_grouped_subquery_not_one_join_each():
    from dspex.store._summarytable import select_page
    from dspex.store.query import Query

    many = str(select_page(_sqltables.experiments, _sqltables.tags, Query.parse({"tags": [
        f"t{i}" for i in range(100)]})).compile())  # fmt: skip
    assert "EXISTS" not in many and many.count("GROUP BY") == 1
    few = str(
        select_page(
            _sqltables.experiments, _sqltables.tags, Query.parse({"tags": ["a", "b"]})
        ).compile()
    )
    assert few.count("EXISTS") == 2  # a few tags: indexed lookups that stop early


@pytest.mark.postgres
def test_a_postgresql_psycopg_url_opens_and_other_drivers_are_named(postgres_database):
    url = postgres_database.replace("postgresql://", "postgresql+psycopg://")
    with ResultStore.open(url, auto_migrate=True) as store:
        store.archive_experiment(experiment := make_experiment())
        assert store.get_experiment(experiment.id) == experiment
    for driver in ("postgresql+asyncpg", "postgresql+psycopg2"):
        with pytest.raises(
            StoreUnavailable, match=re.escape(f"scheme '{driver}' is not one dspex")
        ):
            ResultStore.open(f"{driver}://u:pw@h/db").connect()


def test_reading_a_sqlite_store_leaves_no_wal_or_shm_behind(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with ResultStore.open(url) as store:
        store.archive_experiment(experiment := make_experiment())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]
    with ResultStore.open(url, read_only=True) as reader:
        assert reader.get_experiment(experiment.id) == experiment
        assert reader.query_experiments()[0].id == experiment.id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]


def test_a_sqlite_file_without_dspex_tables_is_no_store_to_read(tmp_path):
    path = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE unrelated (x)")
    engine.dispose()
    with pytest.raises(StoreUnavailable, match="no dspex tables"):
        ResultStore.open(f"sqlite:///{path}", read_only=True).connect()


def test_a_relative_sqlite_path_that_looks_absolute_gets_the_four_slash_hint(tmp_path):
    # from tmp_path, sqlite:///tmp/x.db names ./tmp/x.db, whose directory does not exist
    with pytest.raises(StoreUnavailable, match=r"sqlite:////tmp/x\.db \(four slashes\)"):
        ResultStore.open("sqlite:///tmp/x.db").connect()
    with pytest.raises(StoreUnavailable, match="four slashes"):
        ResultStore.open("sqlite:///tmp/x.db", read_only=True).connect()
