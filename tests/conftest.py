"""Shared fixtures: every test starts from default settings and a fresh default store."""

from __future__ import annotations

from collections.abc import Iterator

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
