from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from dspex.errors import InvalidIdError
from dspex.ids import id_timestamp, is_valid_id, new_id, validate_id


def test_ids_sort_in_creation_order_even_within_one_millisecond():
    ids = [new_id("evt") for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_from_many_threads_are_unique():
    out: list[str] = []

    def make():
        out.extend(new_id("trl") for _ in range(2000))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 8000


def test_ids_carry_their_creation_time():
    before = datetime.now(UTC) - timedelta(milliseconds=5)
    assert before <= id_timestamp(new_id("exp")) <= datetime.now(UTC) + timedelta(milliseconds=5)


def test_ids_are_safe_file_names():
    value = new_id("exp")
    assert all(c.isalnum() or c == "_" for c in value)


@pytest.mark.parametrize(
    "value", [None, 3, "exp_", "EXP_01JD0000000000000000000000", "exp_01JD00000000000000000000001"]
)
def test_invalid_values(value):
    assert not is_valid_id(value, "exp")
    with pytest.raises(InvalidIdError, match="experiment id"):
        validate_id(value, "exp")


def test_kind_must_match():
    assert not is_valid_id(new_id("trl"), "exp")
    with pytest.raises(InvalidIdError, match="unknown id kind"):
        new_id("run")  # type: ignore[arg-type]


def test_a_trailing_newline_or_other_suffix_is_refused():
    value = new_id("exp")
    for bad in (value + "\n", value + "/", " " + value, value + "\x00"):
        assert not is_valid_id(bad, "exp")
        with pytest.raises(InvalidIdError):
            validate_id(bad, "exp")
