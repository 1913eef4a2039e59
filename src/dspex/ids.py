"""Record ids: sortable by creation time, safe as file names, typed by a prefix.

An id is ``<kind>_<ULID>``: a kind prefix (``exp``, ``trl``, ``evt``, ``hyp``), an
underscore, then 26 characters of Crockford base32 (48 bits of milliseconds since
the epoch, 80 bits that increase monotonically within a millisecond). Ids of one
kind therefore sort in creation order as plain strings, within one process::

    >>> from dspex.ids import new_id, validate_id
    >>> eid = new_id("exp")
    >>> validate_id(eid, "exp") == eid
    True
    >>> validate_id("../etc/passwd", "exp")
    Traceback (most recent call last):
    ...
    dspex.errors.InvalidIdError: experiment id '../etc/passwd' is not a dspex id: ...

Anything else offered as an id is refused with :class:`~dspex.errors.InvalidIdError`.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from datetime import UTC, datetime
from typing import Literal

from dspex.errors import InvalidIdError

__all__ = [
    "ID_KINDS",
    "IdKind",
    "IdSeries",
    "id_at",
    "id_timestamp",
    "is_valid_id",
    "new_id",
    "validate_id",
]

IdKind = Literal["exp", "trl", "evt", "hyp"]
ID_KINDS: dict[str, str] = {
    "exp": "experiment",
    "trl": "trial",
    "evt": "event",
    "hyp": "hypothesis",
}

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE = "[0-9A-HJKMNP-TV-Z]{26}"
_ID_RE = re.compile(rf"(exp|trl|evt|hyp)_({_ULID_RE})")  # used with fullmatch only
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1


class _Monotonic:
    """ULID generator whose output strictly increases within the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def next(self) -> int:
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if now_ms > self._last_ms:
                self._last_ms = now_ms
                # Leave headroom so increments within one millisecond never overflow.
                self._last_random = int.from_bytes(os.urandom(10), "big") >> 1
            else:
                self._last_random += 1
                if self._last_random > _RANDOM_MAX:  # pragma: no cover - 2**79 ids in 1 ms
                    self._last_ms += 1
                    self._last_random = 0
            return (self._last_ms << _RANDOM_BITS) | self._last_random


_generator = _Monotonic()


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_MAX_MS = 253_402_300_800_000  # 10000-01-01T00:00Z: dates (and folders) end at year 9999
# The alphabet is in ASCII order, so ULIDs compare as their numbers: every id made before
# year 10000 sorts below this one.
_FIRST_ULID_PAST_9999 = _encode(_MAX_MS << _RANDOM_BITS)


def new_id(kind: IdKind) -> str:
    """A fresh id of ``kind``, greater than every id this process made before."""
    if kind not in ID_KINDS:
        raise InvalidIdError(f"unknown id kind {kind!r}; valid kinds: {', '.join(ID_KINDS)}")
    return f"{kind}_{_encode(_generator.next())}"


_SERIES_BITS = 25  # the last 5 characters count up within a series
_SERIES_SIZE = 1 << _SERIES_BITS
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


class IdSeries:
    """Many ids of one kind, cheaply, for hot paths that make thousands (trace events).

    A series draws a random stem once (the creation millisecond and 55 random bits) and
    counts up in the last 5 characters, so making an id is one counter step and a
    string concatenation instead of a locked ULID encoding. The ids are valid ids of
    ``kind``; they sort in creation order within one stem; :func:`id_timestamp`
    gives the stem's creation time. After 2**25 ids the series draws a new stem::

        >>> from dspex.ids import IdSeries, validate_id
        >>> next_event_id = IdSeries("evt")
        >>> a, b = next_event_id(), next_event_id()
        >>> a < b and validate_id(b, "evt") == b
        True
    """

    __slots__ = ("kind", "_state", "_lock")

    def __init__(self, kind: IdKind) -> None:
        if kind not in ID_KINDS:
            raise InvalidIdError(f"unknown id kind {kind!r}; valid kinds: {', '.join(ID_KINDS)}")
        self.kind = kind
        self._lock = threading.Lock()
        self._state = self._new_state()

    def _new_state(self) -> tuple[str, itertools.count[int]]:
        stem = int.from_bytes(os.urandom(7), "big") >> 1  # 55 random bits
        value = ((time.time_ns() // 1_000_000) << _RANDOM_BITS) | (stem << _SERIES_BITS)
        return f"{self.kind}_{_encode(value)[:21]}", itertools.count()

    def __call__(self) -> str:
        # prefix and counter are read as one tuple: a concurrent restart cannot mix them
        prefix, counter = self._state
        n = next(counter)  # atomic: itertools.count is implemented in C
        if n >= _SERIES_SIZE:
            with self._lock:
                if self._state[1] is counter:
                    self._state = self._new_state()
            return self()
        return prefix + _ALPHABET[n >> 20] + _PAIRS[(n >> 10) & 1023] + _PAIRS[n & 1023]


def id_at(kind: IdKind, milliseconds: int, serial: int) -> str:
    """A reproducible id of ``kind`` for a given creation time and serial number.

    For fixtures and imports that need the same ids on every run; live records use
    :func:`new_id`::

        >>> id_at("trl", 1_780_000_000_000, 7) < id_at("trl", 1_780_000_000_000, 8)
        True
    """
    if kind not in ID_KINDS:
        raise InvalidIdError(f"unknown id kind {kind!r}; valid kinds: {', '.join(ID_KINDS)}")
    if not (0 <= milliseconds < _MAX_MS and 0 <= serial <= _RANDOM_MAX):
        raise InvalidIdError(
            "milliseconds must be a time before the year 10000 and serial fit 80 bits"
        )
    return f"{kind}_{_encode((milliseconds << _RANDOM_BITS) | serial)}"


def is_valid_id(value: object, kind: IdKind | None = None) -> bool:
    """Whether ``value`` is a well-formed id (of ``kind``, when given)."""
    if not isinstance(value, str):
        return False
    match = _ID_RE.fullmatch(value)
    return (
        match is not None
        and (kind is None or match.group(1) == kind)
        and match.group(2) < _FIRST_ULID_PAST_9999
    )


def validate_id(value: object, kind: IdKind) -> str:
    """Return ``value`` if it is an id of ``kind``; raise InvalidIdError naming it otherwise."""
    if is_valid_id(value, kind):
        return value  # type: ignore[return-value]
    noun = ID_KINDS[kind]
    raise InvalidIdError(
        f"{noun} id {value!r} is not a dspex id: expected {kind!r} followed by '_' and "
        f"26 Crockford base32 characters that name a time before the year 10000, for "
        f"example {new_id(kind)!r}; use the id that dspex gave the record"
    )


def id_timestamp(value: str) -> datetime:
    """The UTC creation time (millisecond precision) encoded in an id."""
    match = _ID_RE.fullmatch(value)
    if not match or not is_valid_id(value):
        raise InvalidIdError(f"{value!r} is not a dspex id")
    number = 0
    for char in match.group(2):
        number = number * 32 + _ALPHABET.index(char)
    return datetime.fromtimestamp((number >> _RANDOM_BITS) / 1000, tz=UTC)
