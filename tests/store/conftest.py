"""Stores for the store tests: one fixture over every backend, PostgreSQL included.

``make_store()`` gives a fresh, empty, connected store of the test's backend (each
PostgreSQL store lives in its own schema of a database made for this test session, on
the session's server: see ``postgres_server`` in tests/conftest.py).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest

from dspex.store import ResultStore

BACKENDS = ["memory", "file", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_counter = itertools.count()


def _admin(url: str):  # a psycopg connection in autocommit, for CREATE/DROP DATABASE
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """The URL of a database created for this session (dropped afterwards)."""
    name = f"dspex_store_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _admin(postgres_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with _admin(postgres_server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_schema_url(database_url: str) -> str:
    """A URL whose connections use a new, empty schema of ``database_url``."""
    schema = f"s{next(_counter)}_{uuid.uuid4().hex[:6]}"
    with _admin(database_url) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database_url}?options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_url_factory(request, backend, tmp_path_factory) -> Callable[[], str]:
    """Fresh store URLs of the test's backend (parametrize ``backend`` to pick some)."""

    def make() -> str:
        if backend == "memory":
            return "memory://"
        if backend == "file":
            return "file://" + str(tmp_path_factory.mktemp("filestore"))
        if backend == "sqlite":
            return "sqlite:///" + str(tmp_path_factory.mktemp("sqlite") / "store.db")
        return postgres_schema_url(request.getfixturevalue("postgres_database"))

    return make


@pytest.fixture
def make_store(backend, store_url_factory) -> Iterator[Callable[[], ResultStore]]:
    stores: list[ResultStore] = []

    def make() -> ResultStore:
        store = ResultStore.open(store_url_factory(), auto_migrate=True).connect()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store) -> ResultStore:
    return make_store()
