"""Shared machinery for records: frozen pydantic models, UTC timestamps, JSON round trips."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, JsonValue
from pydantic import ValidationError as PydanticValidationError

from dspex.errors import ValidationError
from dspex.ids import validate_id

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


def _id_type(kind: Any) -> Any:
    return Annotated[str, AfterValidator(lambda v: validate_id(v, kind))]


ExperimentId = _id_type("exp")
TrialId = _id_type("trl")
EventId = _id_type("evt")
HypothesisId = _id_type("hyp")


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
        """Compact JSON text; parsing it with :meth:`from_json` gives an equal record."""
        return self.model_dump_json()

    def to_json_bytes(self) -> bytes:
        """Compact JSON as UTF-8 bytes."""
        return self.model_dump_json().encode()

    def content_checksum(self) -> str:
        """``sha256:<hex>`` of the record's JSON: equal records have equal checksums."""
        return "sha256:" + hashlib.sha256(self.to_json_bytes()).hexdigest()

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` applied (records themselves never change)."""
        data = dict(self)
        data.update(changes)
        return type(self)(**data)
