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

import os
import re
import threading
import time
from datetime import UTC, datetime
from typing import Literal

from dspex.errors import InvalidIdError

__all__ = ["ID_KINDS", "IdKind", "id_timestamp", "is_valid_id", "new_id", "validate_id"]

IdKind = Literal["exp", "trl", "evt", "hyp"]
ID_KINDS: dict[str, str] = {
    "exp": "experiment",
    "trl": "trial",
    "evt": "event",
    "hyp": "hypothesis",
}

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE = "[0-9A-HJKMNP-TV-Z]{26}"
_ID_RE = re.compile(rf"^(exp|trl|evt|hyp)_({_ULID_RE})$")
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


def new_id(kind: IdKind) -> str:
    """A fresh id of ``kind``, greater than every id this process made before."""
    if kind not in ID_KINDS:
        raise InvalidIdError(f"unknown id kind {kind!r}; valid kinds: {', '.join(ID_KINDS)}")
    return f"{kind}_{_encode(_generator.next())}"


def is_valid_id(value: object, kind: IdKind | None = None) -> bool:
    """Whether ``value`` is a well-formed id (of ``kind``, when given)."""
    if not isinstance(value, str):
        return False
    match = _ID_RE.match(value)
    return match is not None and (kind is None or match.group(1) == kind)


def validate_id(value: object, kind: IdKind) -> str:
    """Return ``value`` if it is an id of ``kind``; raise InvalidIdError naming it otherwise."""
    if is_valid_id(value, kind):
        return value  # type: ignore[return-value]
    noun = ID_KINDS[kind]
    raise InvalidIdError(
        f"{noun} id {value!r} is not a dspex id: expected {kind!r} followed by '_' and "
        f"26 Crockford base32 characters, for example {new_id(kind)!r}; "
        "use the id that dspex gave the record"
    )


def id_timestamp(value: str) -> datetime:
    """The UTC creation time (millisecond precision) encoded in an id."""
    match = _ID_RE.match(value)
    if not match:
        raise InvalidIdError(f"{value!r} is not a dspex id")
    number = 0
    for char in match.group(2):
        number = number * 32 + _ALPHABET.index(char)
    return datetime.fromtimestamp((number >> _RANDOM_BITS) / 1000, tz=UTC)
