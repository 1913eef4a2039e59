"""The public API is exactly what dspex.__all__ says, and every name in it resolves."""

from __future__ import annotations

import dspex


def test_all_names_resolve():
    missing = [name for name in dspex.__all__ if not hasattr(dspex, name)]
    assert missing == []


def test_all_is_sorted_and_unique():
    names = [n for n in dspex.__all__ if not n.startswith("__")]
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    assert len(set(dspex.__all__)) == len(dspex.__all__)


def test_every_error_descends_from_dspex_error():
    errors = [
        getattr(dspex, n)
        for n in dspex.__all__
        if isinstance(getattr(dspex, n), type) and issubclass(getattr(dspex, n), Exception)
    ]
    assert errors and all(issubclass(e, dspex.DspexError) for e in errors)
