"""Shared fixtures: every test starts from default settings and a fresh default store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import dspex
from dspex.store import ResultStore


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch) -> Iterator[None]:
    # Settings read the current directory and the environment; give each test a clean one.
    monkeypatch.chdir(tmp_path)
    for name in [
        n for n in os.environ if n.startswith("DSPEX_") and not n.startswith("DSPEX_TEST_")
    ]:
        monkeypatch.delenv(name)
    # the tests' environment: the default store is this process's memory (the one
    # default that depends on DSPEX_ENV; docs/configuration.md)
    monkeypatch.setenv("DSPEX_ENV", "test")
    # the write-ahead spool of experiments with a file or sql store (children inherit it):
    # the test's own, not ~/.local/state (a killed child leaves its spool, by design)
    monkeypatch.setenv("DSPEX_JOURNAL_SPOOL_DIR", str(tmp_path / "spool"))
    dspex.config.reset()
    ResultStore.reset_default()
    yield
    dspex.config.reset()
    ResultStore.reset_default()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """An admin URL of a PostgreSQL server for this session: DSPEX_TEST_POSTGRES_URL when
    set, else a throwaway cluster started in a temporary directory (tests/postgres_cluster.py)
    and deleted afterwards. Skips, saying what to install, only when PostgreSQL's
    binaries are absent."""
    from tests.postgres_cluster import MISSING, binaries, throwaway_cluster

    given = os.environ.get("DSPEX_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip(MISSING)
    with throwaway_cluster(bin_dir) as url:
        yield url


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One local Ray (2 CPUs, no dashboard) shared by every test of the session that needs it.

    Ray gives its node 30 s to start; on a busy 2-core machine that can run out, so the
    start is tried three times before the tests that need Ray fail."""
    import ray as ray_module

    from dspex.workers.ray_pool import ensure_ray

    for attempt in range(3):
        try:
            ray = ensure_ray(None)
            break
        except Exception:
            ray_module.shutdown()
            if attempt == 2:
                raise
    yield ray
    ray.shutdown()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long`` (50 SIGKILLs of a recording process) run only when selected
    with ``-m long``: ``make test`` runs their short variants."""
    if "long" in (config.option.markexpr or ""):
        return
    kept = [item for item in items if item.get_closest_marker("long") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture
def give_ways(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each :meth:`Handoff.give_way <dspex.workers.handoff.Handoff.give_way>` call
    returned while the test ran (True: the running thread waited for a sleeper)."""
    from dspex.workers.handoff import GIVE_WAY_WAIT, Handoff

    returned: list[bool] = []
    real = Handoff.give_way

    def counted(self: Handoff, timeout: float = GIVE_WAY_WAIT) -> bool:
        result = real(self, timeout)
        returned.append(result)
        return result

    monkeypatch.setattr(Handoff, "give_way", counted)
    return returned
