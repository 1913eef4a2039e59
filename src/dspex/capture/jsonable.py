"""Turn whatever a DSPy program hands us into JSON data, cheaply and without failing.

Capture must never break the program it records, so anything that is not JSON
becomes its ``repr`` (truncated), and DSPy's own containers become dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_REPR", "jsonable"]

MAX_REPR = 2000
# Exact types that are JSON already (subclasses, such as enums, take the slower path).
_AS_IS = frozenset({str, int, bool, type(None)})
_MAX_DEPTH = 8


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-compatible copy of ``value`` (dicts, lists, str, int, float, bool, None).

    >>> jsonable({"q": ("a", 1.5), 2: float("nan"), "obj": object()})
    {'q': ['a', 1.5], '2': 'nan', 'obj': '<object object at ...>'}
    """
    # Exact-type checks first: this runs for every recorded call, and the common
    # values (str, dict, list) are answered without an ABC isinstance check; the leaves
    # of a dict or list (finite floats too: ``v - v`` is nan for inf and nan) are kept
    # without a call per leaf.
    cls = type(value)
    if cls in _AS_IS:
        return value
    if _depth >= _MAX_DEPTH:
        return _short_repr(value)
    depth = _depth + 1
    if cls is dict:
        return {
            (k if type(k) is str else str(k)): (
                v
                if type(v) in _AS_IS or (type(v) is float and v - v == 0.0)  # finite: as is
                else jsonable(v, depth)
            )
            for k, v in value.items()
        }
    if cls is list or cls is tuple:
        return [
            v if type(v) in _AS_IS or (type(v) is float and v - v == 0.0) else jsonable(v, depth)
            for v in value
        ]
    if cls is float:
        return value if math.isfinite(value) else repr(value)
    return _jsonable_other(value, _depth)


def _jsonable_other(value: Any, _depth: int) -> Any:
    store = _example_store(value)
    if store is not None:  # dspy.Example and dspy.Prediction, without toDict's extra copy
        return jsonable(store, _depth + 1)
    if isinstance(value, str | bool | int):  # subclasses (enums and the like)
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, _depth + 1) for v in value]
    to_dict = getattr(value, "toDict", None)
    if callable(to_dict):
        try:
            return jsonable(to_dict(), _depth + 1)
        except Exception:  # noqa: BLE001 - a broken toDict must not break capture
            return _short_repr(value)
    model_dump = getattr(value, "model_dump", None)  # pydantic models used as fields
    if callable(model_dump):
        try:
            return jsonable(model_dump(mode="json"), _depth + 1)
        except Exception:  # noqa: BLE001
            return _short_repr(value)
    return _short_repr(value)


_example_class: type | None = None


def _example_store(value: Any) -> dict[str, Any] | None:
    global _example_class
    if _example_class is None:
        from dspy.primitives.example import Example

        _example_class = Example
    if isinstance(value, _example_class):
        # Read past the instance's __dict__: on Python 3.11+ an instance keeps its
        # attributes inline until someone asks for __dict__, which then becomes a dict of
        # its own for as long as the object lives (DSPy's LM history keeps each call's
        # Prediction for 10,000 calls; one more object per call for the collector).
        try:
            store = object.__getattribute__(value, "_store")
        except AttributeError:
            return None
        if type(store) is dict:
            return store
    return None


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        text = f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."
