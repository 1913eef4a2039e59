"""Helpers for the CLI tests: golden files at fixed widths."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("DSPEX_UPDATE_GOLDEN") == "1"


def check_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with tests/cli/golden/<name>; rewrite with DSPEX_UPDATE_GOLDEN=1."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; create it with DSPEX_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} differs; rewrite with DSPEX_UPDATE_GOLDEN=1"
    )
