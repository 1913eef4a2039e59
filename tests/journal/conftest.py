"""The journal's tests: a spool directory per test; the long variants only when asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import dspex


@pytest.fixture
def spool_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "spool"
    dspex.configure(journal={"spool_dir": str(path)})
    yield path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long`` (the 50-kill variant) run only when selected with ``-m long``:
    ``make test`` runs their short variants."""
    if "long" in (config.option.markexpr or ""):
        return
    kept = [item for item in items if item.get_closest_marker("long") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
