"""The journal's tests: a spool directory per test."""

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
