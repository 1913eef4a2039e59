"""Shared machinery for records: frozen pydantic models, UTC timestamps, JSON round trips."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, JsonValue
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from dspex.errors import ValidationError
from dspex.ids import IdKind, validate_id

__all__ = [
    "SCHEMA_VERSION",
    "EventId",
    "ExperimentId",
    "HypothesisId",
    "JsonDict",
    "Record",
    "TrialId",
    "UtcDatetime",
    "describe_validation_error",
    "plain_json",
    "stored_json",
    "utc_now",
]

SCHEMA_VERSION = 1
"""Version of the record layout; stored with every experiment so readers can migrate."""

JsonDict = dict[str, JsonValue]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC, microsecond precision."""
    return datetime.now(UTC)


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "timestamp must be timezone-aware; pass datetime.now(timezone.utc) "
            "or a string ending in 'Z' or '+00:00'"
        )
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


def _validator(kind: IdKind) -> AfterValidator:
    return AfterValidator(lambda v: validate_id(v, kind))


# Spelled out (not built by a function) so that type checkers see a str.
ExperimentId = Annotated[str, _validator("exp")]
TrialId = Annotated[str, _validator("trl")]
EventId = Annotated[str, _validator("evt")]
HypothesisId = Annotated[str, _validator("hyp")]


def describe_validation_error(model: str, exc: PydanticValidationError) -> str:
    """One readable message naming each bad field, the value given and what is allowed."""
    lines = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(record)"
        value = error.get("input")
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"{model}.{location} = {shown}: {error['msg']}")
    return "invalid " + model + ":\n  " + "\n  ".join(lines)


class Record(BaseModel):
    """Base of every dspex record: immutable, strict about unknown fields, JSON round-trippable.

    Construct records with keyword arguments; a bad field raises
    :class:`dspex.ValidationError` naming the field, the value and what is allowed::

        >>> from dspex import Hypothesis
        >>> h = Hypothesis(research_question="Do rules beat demos?")
        >>> Hypothesis.from_json(h.to_json()) == h
        True
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        ser_json_inf_nan="constants",
        validate_default=False,
        use_enum_values=False,
    )

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise ValidationError(describe_validation_error(type(self).__name__, exc)) from exc

    # Marked as pydantic's own __init__, so that parsing (from_json, from_dict and the
    # records nested in them) does not call it for each record: that validated every
    # event a second time in Python, and made reading a long trial 2-3x slower. It only
    # translates errors, and from_json and from_dict translate theirs themselves.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Build a record from plain data (as produced by :meth:`to_dict`)."""
        try:
            return cls.model_validate(data)
        except PydanticValidationError as exc:
            raise ValidationError(describe_validation_error(cls.__name__, exc)) from exc

    @classmethod
    def from_json(cls, data: str | bytes) -> Self:
        """Parse a record from JSON text (as produced by :meth:`to_json`)."""
        try:
            return cls.model_validate_json(data)
        except PydanticValidationError as exc:
            raise ValidationError(describe_validation_error(cls.__name__, exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible data."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """Compact JSON text, as stored (see :meth:`representable`)."""
        return stored_json(self)[0].decode()

    def to_json_bytes(self) -> bytes:
        """Compact JSON as UTF-8 bytes, as stored (see :meth:`representable`)."""
        return stored_json(self)[0]

    def representable(self) -> Self:
        """This record as stored, and as :meth:`from_json` reads it back.

        JSON cannot carry everything a Python string or int can: a lone surrogate
        (``"\\ud83d"``, a truncated emoji) becomes the text ``\\ud83d``, and an integer of
        more than 4,300 digits (more than JSON readers accept) becomes its decimal text.
        A field that must hold an integer refuses such a number
        (:class:`dspex.ValidationError`). Anything else comes back unchanged; the record
        itself is returned when nothing needs to change::

            >>> from dspex import Experiment, ProgramInfo
            >>> cut = Experiment(name="n", program=ProgramInfo(name="qa"),
            ...                  metadata={"reply": "emoji " + chr(0xD83D)})
            >>> cut.representable().metadata["reply"]
            'emoji \\\\ud83d'
        """
        return stored_json(self)[1]

    def content_checksum(self) -> str:
        """``sha256:<hex>`` of the record's JSON: equal records have equal checksums."""
        return "sha256:" + hashlib.sha256(self.to_json_bytes()).hexdigest()

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` applied (records themselves never change)."""
        data = dict(self)
        data.update(changes)
        return type(self)(**data)


R = TypeVar("R", bound=Record)

_LONGEST_INT = 4300  # digits JSON readers accept in a number (pydantic's, and Python's int())
_INT_BOUND = 10**_LONGEST_INT
_STRIDE = 2150  # a run of more than _LONGEST_INT digits covers two consecutive samples
_MARK_DIGITS = bytes(49 if 48 <= b <= 57 else 48 for b in range(256))
_DIGIT_RUN = re.compile(rb"[0-9]{%d}" % (_STRIDE + 1))


def stored_json(record: R) -> tuple[bytes, R]:
    """``record``'s compact JSON, and the record that JSON reads back as (``record`` itself
    unless something had to become text; see :meth:`Record.representable`)."""
    data = plain_json(record)
    if data is not None:
        return data, record
    changed, plain = _as_text_where_needed(record.model_dump(mode="python"))
    serializer: Any = type(record).__pydantic_serializer__
    if not changed:  # a long run of digits inside a string: nothing to change
        return bytes(serializer.to_json(record)), record
    clean = type(record).from_dict(plain)
    return bytes(serializer.to_json(clean)), clean


def plain_json(record: Record) -> bytes | None:
    """``record``'s compact JSON when nothing in it has to become text (the usual case,
    and the fast one), else None."""
    serializer: Any = type(record).__pydantic_serializer__
    try:
        data = bytes(serializer.to_json(record))
    except PydanticSerializationError as exc:
        if "surrogates not allowed" not in str(exc):
            raise
        return None
    return None if _may_hold_long_number(data) else data


def _may_hold_long_number(data: bytes) -> bool:
    """Whether ``data`` has a run of more than 2,150 digits (which a number too long to
    read back would be). Looks at every 2,150th byte, and around two neighbouring digits
    only: a cheap test for every record written."""
    if len(data) <= _LONGEST_INT:
        return False
    marks = data[::_STRIDE].translate(_MARK_DIGITS)
    found = marks.find(b"11")
    while found >= 0:
        if _DIGIT_RUN.match(data, found * _STRIDE):
            return True
        found = marks.find(b"11", found + 1)
    return False


def _as_text_where_needed(value: Any) -> tuple[bool, Any]:
    """(changed, ``value`` with lone surrogates and over-long integers as text)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True, value.encode("utf-8", "backslashreplace").decode("utf-8")
        return False, value
    if isinstance(value, int) and not isinstance(value, bool):
        if -_INT_BOUND < value < _INT_BOUND:
            return False, value
        return True, _decimal_text(value)
    if isinstance(value, dict):
        items = [(_as_text_where_needed(k), _as_text_where_needed(v)) for k, v in value.items()]
        if not any(k[0] or v[0] for k, v in items):
            return False, value
        return True, {k[1]: v[1] for k, v in items}
    if isinstance(value, list | tuple):
        parts = [_as_text_where_needed(v) for v in value]
        if not any(changed for changed, _ in parts):
            return False, value
        return True, type(value)(v for _, v in parts)
    return False, value


def _decimal_text(value: int) -> str:
    """The decimal digits of ``value``, however long (``str()`` refuses over 4,300 digits)."""
    sign, value = ("-", -value) if value < 0 else ("", value)
    chunks = []
    while value:
        value, low = divmod(value, 10**1000)
        chunks.append(low)
    text = str(chunks.pop())
    return sign + text + "".join(str(c).zfill(1000) for c in reversed(chunks))
