"""IdSeries: cheap event ids that are valid, unique across threads and series, and ordered."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest

from dspex.errors import InvalidIdError
from dspex.ids import _SERIES_SIZE, IdSeries, id_timestamp, is_valid_id, new_id


def test_ids_are_valid_and_increase():
    series = IdSeries("evt")
    ids = [series() for _ in range(2000)]
    assert all(is_valid_id(i, "evt") for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert abs((id_timestamp(ids[0]) - id_timestamp(new_id("evt"))).total_seconds()) < 5


def test_ids_from_many_threads_never_collide():
    series = IdSeries("evt")
    with ThreadPoolExecutor(8) as pool:
        chunks = list(pool.map(lambda _: [series() for _ in range(5000)], range(8)))
    ids = [i for chunk in chunks for i in chunk]
    assert len(set(ids)) == 40_000


def test_two_series_do_not_share_ids():
    a, b = IdSeries("evt"), IdSeries("evt")
    assert {a() for _ in range(1000)}.isdisjoint({b() for _ in range(1000)})


def test_an_exhausted_stem_is_replaced():
    series = IdSeries("evt")
    prefix, _ = series._state
    series._state = (prefix, itertools.count(_SERIES_SIZE - 2))
    ids = [series() for _ in range(4)]
    assert all(is_valid_id(i, "evt") for i in ids) and len(set(ids)) == 4
    assert ids[0].endswith("ZZZZY") and ids[1].endswith("ZZZZZ")
    assert ids[2].endswith("00000") and ids[2][:-5] != ids[1][:-5]


def test_unknown_kind_is_refused():
    with pytest.raises(InvalidIdError, match="unknown id kind 'xyz'"):
        IdSeries("xyz")  # type: ignore[arg-type]
