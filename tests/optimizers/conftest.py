"""Fixtures for optimizer capture tests: the offline LM, its data and metric, a store."""

from __future__ import annotations

import dspy
import pytest

from dspex import ResultStore
from dspex.offline import ArithQA

QA = ArithQA  # the bundled one-predictor program


@pytest.fixture
def store():
    return ResultStore.open("memory://")


@pytest.fixture
def lm():
    import dspex

    lm = dspex.offline_lm()
    with dspy.context(lm=lm):
        yield lm


@pytest.fixture(scope="session")
def arith():
    from dspex.offline import load_arith

    return load_arith()


def simba(**overrides):
    from dspex.offline import exact_match

    settings = dict(
        metric=exact_match, bsize=8, num_candidates=3, max_steps=3, max_demos=2, num_threads=4
    )
    settings.update(overrides)
    return dspy.SIMBA(**settings)


def events_of(trial, kind):
    return [e for e in trial.events if e.kind.value == kind]


def role(experiment, name):
    return [t for t in experiment.trials if t.metadata.get("role") == name]


def dspex_marks(*roots):
    """``(where, attribute)`` for every attribute of dspex found on an object reachable
    from ``roots`` (through attributes, dict values and sequence items)."""
    import types

    found, seen = [], set()
    stack = [(root, f"root{i}") for i, root in enumerate(roots)]
    skip = (str, bytes, int, float, bool, type(None), type, types.ModuleType, types.FunctionType)
    while stack:
        obj, where = stack.pop()
        if isinstance(obj, skip) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            stack += [(v, f"{where}[{k!r}]") for k, v in obj.items()]
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            stack += [(v, f"{where}[{i}]") for i, v in enumerate(obj)]
            continue
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict):
            found += [(where, name) for name in attributes if "dspex" in name]
            stack += [(v, f"{where}.{k}") for k, v in attributes.items()]
    return found
