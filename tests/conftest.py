"""Shared fixtures: every test starts from default settings and a fresh default store."""

from __future__ import annotations

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
        n
        for n in __import__("os").environ
        if n.startswith("DSPEX_") and not n.startswith("DSPEX_TEST_")
    ]:
        monkeypatch.delenv(name)
    dspex.config.reset()
    ResultStore.reset_default()
    yield
    dspex.config.reset()
    ResultStore.reset_default()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One local Ray (2 CPUs, no dashboard) shared by every test of the session that needs it."""
    from dspex.workers.ray_pool import ensure_ray

    ray = ensure_ray(None)
    yield ray
    ray.shutdown()
