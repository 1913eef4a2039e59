"""The stored form of a sealed experiment: its exact JSON, as a header and one part per trial.

Every backend stores the same bytes, so a record's checksum is the SHA-256 of what is
stored, and one trial can be read (or checked) without parsing the rest::

    >>> from dspex import Experiment, ProgramInfo
    >>> exp = Experiment(name="demo", program=ProgramInfo(name="qa"), status="completed")
    >>> record = encode(exp)
    >>> record.body == exp.to_json_bytes(), record.checksum == exp.content_checksum()
    (True, True)

Each trial is serialized once; the full JSON is the header (the experiment with an
empty ``trials`` list) with the trials put back at ``at``. Backends write the parts
(:meth:`EncodedRecord.chunks`) without joining them; :func:`splice` joins them back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dspex.model import Experiment, Record
from dspex.store.query import ExperimentSummary, summary_of

__all__ = ["EncodedRecord", "encode", "sha256", "splice"]

_MARKER = b'"trials":['
_EMPTY = _MARKER + b"]"


def sha256(data: bytes | memoryview) -> str:
    """``sha256:<hex>``, the checksum format of every record."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(record: Record) -> bytes:
    # The same bytes as record.to_json_bytes(), without the str round trip (half the time).
    serializer: Any = type(record).__pydantic_serializer__
    return bytes(serializer.to_json(record))


@dataclass(frozen=True)
class EncodedRecord:
    """A sealed experiment ready to store; its JSON is ``header`` with ``trials`` at ``at``."""

    id: str
    header: bytes
    at: int | None  # None when there are no trials
    trials: tuple[tuple[str, bytes], ...]  # (trial id, its JSON), in record order
    checksum: str
    summary: ExperimentSummary

    def chunks(self) -> Iterator[bytes]:
        """The record's JSON, piece by piece (concatenated they are :attr:`body`)."""
        return _chunks(self.header, self.at, [data for _, data in self.trials])

    @property
    def body(self) -> bytes:
        """The record's JSON in one piece (a copy: prefer :meth:`chunks` for large ones)."""
        return b"".join(self.chunks())

    @property
    def spans(self) -> list[tuple[str, int, int]]:
        """(trial id, start, end) of each trial within :attr:`body`."""
        spans, offset = [], self.at or 0
        for trial_id, data in self.trials:
            spans.append((trial_id, offset, offset + len(data)))
            offset += len(data) + 1
        return spans


def encode(experiment: Experiment) -> EncodedRecord:
    """Serialize ``experiment`` once, as a header and one JSON part per trial."""
    parts = [_json(t) for t in experiment.trials]
    header = _json(experiment.model_copy(update={"trials": ()}))
    at: int | None = None
    if parts and header.count(_EMPTY) == 1:
        at = header.index(_EMPTY) + len(_MARKER)
    elif parts:  # some metadata also holds an empty "trials" list: locate the real one
        header, at = _locate(experiment, parts)
    digest = hashlib.sha256()
    for chunk in _chunks(header, at, parts):
        digest.update(chunk)
    checksum = "sha256:" + digest.hexdigest()
    trials = tuple(zip((t.id for t in experiment.trials), parts, strict=True))
    summary = summary_of(experiment, sealed=True, checksum=checksum)
    return EncodedRecord(experiment.id, header, at, trials, checksum, summary)


def _chunks(header: bytes, at: int | None, parts: Sequence[bytes]) -> Iterator[bytes]:
    if at is None:
        yield header
        return
    yield header[:at]
    for position, data in enumerate(parts):
        if position:
            yield b","
        yield data
    yield header[at:]


def _locate(experiment: Experiment, parts: list[bytes]) -> tuple[bytes, int]:
    body = _json(experiment)
    start = body.find(_MARKER + parts[0]) + len(_MARKER)
    end = start + sum(map(len, parts)) + len(parts) - 1
    if body[start:end] != b",".join(parts):
        raise AssertionError(f"cannot locate the trials of {experiment.id} in its JSON")
    return body[:start] + body[end:], start


def splice(header: bytes, at: int | None, trials: Sequence[bytes | memoryview]) -> bytes:
    """The full JSON from a header and its trials' JSON (what :attr:`body` is)."""
    if at is None:
        return header
    return b"".join((header[:at], b",".join(trials), header[at:]))
