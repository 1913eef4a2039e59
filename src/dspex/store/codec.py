"""The stored form of a sealed experiment: its exact JSON bytes and where each trial sits in them.

Every backend stores the same bytes, so a record's checksum is the SHA-256 of what is
stored, and one trial can be read (or checked) without parsing the rest::

    >>> from dspex import Experiment, ProgramInfo
    >>> exp = Experiment(name="demo", program=ProgramInfo(name="qa"), status="completed")
    >>> record = encode(exp)
    >>> record.body == exp.to_json_bytes(), record.checksum == exp.content_checksum()
    (True, True)

The body is built from the header (the experiment without trials) and each trial's
JSON, serialized once; :func:`splice` puts them back together the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from dspex.model import Experiment
from dspex.store.query import ExperimentSummary, summary_of

__all__ = ["EncodedRecord", "encode", "sha256", "splice"]

_MARKER = b'"trials":['
_EMPTY = _MARKER + b"]"


def sha256(data: bytes | memoryview) -> str:
    """``sha256:<hex>``, the checksum format of every record."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class EncodedRecord:
    """A sealed experiment ready to store: ``body`` is exactly ``experiment.to_json_bytes()``."""

    id: str
    body: bytes
    checksum: str
    spans: tuple[tuple[str, int, int], ...]  # (trial id, start, end) in body, in record order
    summary: ExperimentSummary

    def trial(self, position: int) -> memoryview:
        _, start, end = self.spans[position]
        return memoryview(self.body)[start:end]

    def header(self) -> tuple[bytes, int | None]:
        """The body without its trials, and the offset where :func:`splice` puts them back."""
        if not self.spans:
            return self.body, None
        start, end = self.spans[0][1], self.spans[-1][2]
        return self.body[:start] + self.body[end:], start


def encode(experiment: Experiment) -> EncodedRecord:
    """Serialize ``experiment`` once and locate each trial in the result."""
    trials = [t.to_json_bytes() for t in experiment.trials]
    head = experiment.model_copy(update={"trials": ()}).to_json_bytes()
    spans: tuple[tuple[str, int, int], ...]
    if not trials:
        body, spans = head, ()
    elif head.count(_EMPTY) == 1:
        at = head.index(_EMPTY) + len(_MARKER)
        body = splice(head, at, trials)
        spans = _spans(experiment, trials, at)
    else:  # some metadata also holds an empty "trials" list: locate the real one the slow way
        body = experiment.to_json_bytes()
        at = body.find(_MARKER + trials[0]) + len(_MARKER)
        spans = _spans(experiment, trials, at)
        if any(body[s:e] != t for (_, s, e), t in zip(spans, trials, strict=True)):
            raise AssertionError(f"cannot locate the trials of {experiment.id} in its JSON")
    summary = summary_of(experiment, sealed=True, checksum=sha256(body))
    return EncodedRecord(experiment.id, body, summary.checksum or "", spans, summary)


def _spans(
    experiment: Experiment, trials: Sequence[bytes], at: int
) -> tuple[tuple[str, int, int], ...]:
    spans = []
    for trial, data in zip(experiment.trials, trials, strict=True):
        spans.append((trial.id, at, at + len(data)))
        at += len(data) + 1
    return tuple(spans)


def splice(header: bytes, at: int | None, trials: Sequence[bytes | memoryview]) -> bytes:
    """The full body from a header and its trials' JSON (the inverse of ``header()``)."""
    if at is None:
        return header
    return b"".join((header[:at], b",".join(trials), header[at:]))
