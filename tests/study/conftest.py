"""Specs for the study tests: small cells (10 evaluation examples, tiny optimizer budgets)
of three arms seeded three ways (compile, constructor, candidate ranges)."""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.study.lms import ENV

ARMS: dict[str, dict[str, Any]] = {
    "simba": {
        "optimizer": "dspy.SIMBA",
        "options": {
            "bsize": 4,
            "num_candidates": 2,
            "max_steps": 1,
            "max_demos": 1,
            "num_threads": 1,
        },
    },
    "mipro": {
        "optimizer": "dspy.MIPROv2",
        "options": {"auto": "@none", "num_candidates": 2, "num_threads": 1, "verbose": False},
        "compile": {
            "num_trials": 2,
            "minibatch": False,
            "max_bootstrapped_demos": 1,
            "max_labeled_demos": 1,
        },
    },
    "rs": {
        "optimizer": "dspy.BootstrapFewShotWithRandomSearch",
        "options": {
            "num_candidate_programs": 1,
            "max_bootstrapped_demos": 1,
            "max_labeled_demos": 1,
            "num_threads": 1,
        },
    },
}


def spec_data(name: str = "three-arms", seeds: tuple[int, ...] = (0, 1, 2, 3), **extra: Any):
    data: dict[str, Any] = {
        "name": name,
        "hypothesis": "MIPROv2 beats the random search on small arithmetic",
        "program": "dspex.offline:ArithQA",
        "data": "tests.study.lms:small_data",
        "metric": "dspex.offline:exact_match",
        "lm": "tests.study.lms:study_lm",
        "seeds": list(seeds),
        "control": "rs",
        "treatment": "mipro",
        "arms": copy.deepcopy(ARMS),
    }
    data.update(extra)
    return data


def toml_text(data: dict[str, Any]) -> str:
    """``data`` as TOML (enough of it for these specs)."""
    lines = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for key, value in data.items():
        if key not in tables:
            lines.append(f"{key} = {_value(value)}")
    for key, value in tables.items():
        if key == "arms":
            for arm, table in value.items():
                lines.append(f"\n[arms.{arm}]")
                for k, v in table.items():
                    lines.append(f"{k} = {_value(v)}")
        else:
            lines.append(f"\n[{key}]")
            lines += [f"{k} = {_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)


@pytest.fixture
def study_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the test LM counts its calls (and finds its kill marker)."""
    folder = tmp_path / "lm"
    folder.mkdir()
    monkeypatch.setenv(ENV, str(folder))
    return folder


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A PostgreSQL database of its own on the session's server (dropped afterwards)."""
    from tests.store.conftest import _admin

    name = f"dspex_study_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _admin(postgres_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with _admin(postgres_server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
