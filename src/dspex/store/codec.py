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

A backend that stores trials in another form (the sql backend compresses them) passes
that ``transform`` to :func:`encode`: for a large record the hashing and the transform
run on worker threads while the next trials serialize (both release the GIL), so
archiving costs little more than serializing::

    >>> import zlib
    >>> record = encode(exp, transform=zlib.compress)
    >>> record.stored
    ()
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dspex.model import Experiment, Trial
from dspex.model._base import plain_json, stored_json
from dspex.model.eventsummary import EventSummary
from dspex.store._events import (
    EventIndex,
    EventPart,
    Pieces,
    parse_events,
    trial_json,
    trial_with_parts,
)
from dspex.store.query import ExperimentSummary, summary_of

__all__ = ["EncodedRecord", "PartTransform", "encode", "sha256", "splice"]

PartTransform = Callable[[bytes], bytes]
"""What a backend does to each trial's JSON before storing it (e.g. compress it)."""

_MARKER = b'"trials":['
_EMPTY = _MARKER + b"]"


def sha256(data: bytes | memoryview) -> str:
    """``sha256:<hex>``, the checksum format of every record."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class EncodedRecord:
    """A sealed experiment ready to store; its JSON is ``header`` with ``trials`` at ``at``."""

    id: str
    header: bytes
    at: int | None  # None when there are no trials
    trials: tuple[tuple[str, bytes | Pieces], ...]  # (trial id, its JSON), in record order
    checksum: str
    summary: ExperimentSummary
    stored: tuple[bytes, ...] | None = None  # each trial's JSON transformed, when asked for
    events: tuple[EventIndex | None, ...] = ()  # where each trial's events are in its JSON
    summaries: tuple[EventSummary, ...] = ()  # of each trial's events, kept beside (derived)

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


def encode(
    experiment: Experiment,
    transform: PartTransform | None = None,
    appended: Mapping[str, Sequence[EventPart]] | None = None,
    *,
    joined: bool = True,
) -> EncodedRecord:
    """Serialize ``experiment`` once, as a header and one JSON part per trial.

    With ``transform``, :attr:`EncodedRecord.stored` holds ``transform(part)`` for each
    trial, worked out alongside the serialization. ``appended``: for trials without
    events, the events appended to them (their JSON, spliced in without being parsed);
    with ``joined=False`` such a trial's JSON stays :class:`Pieces` (never copied whole).

    What is encoded is the experiment as stored (:meth:`~dspex.Record.representable`):
    text that JSON cannot carry is stored as text, in the summary too.
    """
    header_record = experiment.model_copy(update={"trials": ()})
    plain = plain_json(header_record)
    if plain is None:  # the header alone is no valid record: make the whole one storable
        experiment = experiment.representable()
        header_record = experiment.model_copy(update={"trials": ()})
    header = plain if plain is not None else stored_json(header_record)[0]
    trials = experiment.trials
    at: int | None = None
    if experiment.trials and header.count(_EMPTY) == 1:
        at = header.index(_EMPTY) + len(_MARKER)
    digest = hashlib.sha256()
    streaming = at is not None  # else the trials' place is known only at the end
    if appended and not streaming:  # rare (see _locate): the events become records
        return encode(_with_appended(experiment, appended), transform)
    if streaming:
        digest.update(header[:at])
    pipeline = _Pipeline(digest if streaming else None, transform)
    clean_trials: list[Trial] = []
    indexes: list[EventIndex | None] = []
    try:
        parts: list[bytes | Pieces] = []
        for trial in trials:
            events = None if trial.events or not appended else appended.get(trial.id)
            if events:
                data, clean_trial, index = trial_with_parts(trial, events, joined=joined)
            else:
                data, clean_trial, index = trial_json(trial)
            parts.append(data)
            clean_trials.append(clean_trial)
            indexes.append(index)
            pipeline.add(data)
        stored = pipeline.finish()
    finally:
        pipeline.close()
    if any(c is not t for c, t in zip(clean_trials, trials, strict=True)):
        experiment = experiment.model_copy(update={"trials": tuple(clean_trials)})
    if streaming:
        digest.update(header[at:])
    else:
        if parts:  # some metadata also holds an empty "trials" list: locate the real one
            header, at = _locate(experiment, [bytes(part) for part in parts])
        for chunk in _chunks(header, at, parts):
            digest.update(chunk)
    checksum = "sha256:" + digest.hexdigest()
    located = tuple(zip((t.id for t in experiment.trials), parts, strict=True))
    summary = summary_of(experiment, sealed=True, checksum=checksum)
    return EncodedRecord(
        experiment.id, header, at, located, checksum, summary, stored, tuple(indexes)
    )


_BATCH_BYTES = 1 << 20  # below this much JSON everything stays on the calling thread
_WORKERS = max(1, min(4, os.cpu_count() or 1))


class _Pipeline:
    """Hashes the trials' JSON in order and transforms it, in batches of about 1 MB on
    worker threads, while the caller serializes the next trials."""

    def __init__(self, digest: Any, transform: PartTransform | None) -> None:
        self.digest = digest
        self.transform = transform
        self.batch: list[bytes | Pieces] = []
        self.batch_bytes = 0
        self.first = True
        self.hasher: ThreadPoolExecutor | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.pending: list[Future[Any]] = []
        self.stored: list[Future[list[bytes]]] = []

    def add(self, data: bytes | Pieces) -> None:
        self.batch.append(data)
        self.batch_bytes += len(data)
        if self.batch_bytes >= _BATCH_BYTES:
            self._submit()

    def _submit(self) -> None:
        batch, first = self.batch, self.first
        self.batch, self.batch_bytes, self.first = [], 0, False
        if self.hasher is None:
            self.hasher = ThreadPoolExecutor(1, thread_name_prefix="dspex-hash")
            self.pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="dspex-encode")
        assert self.pool is not None
        if self.digest is not None:  # one thread takes the batches in order
            self.pending.append(self.hasher.submit(_hash, self.digest, batch, first))
        if self.transform is not None:
            self.stored.append(self.pool.submit(_apply, self.transform, batch))

    def finish(self) -> tuple[bytes, ...] | None:
        """Wait for the workers; the transformed parts (None without a transform)."""
        if self.hasher is None:  # a small record: no threads
            if self.digest is not None:
                _hash(self.digest, self.batch, self.first)
            if self.transform is None:
                return None
            return tuple(_apply(self.transform, self.batch))
        if self.batch:
            self._submit()
        for future in self.pending:
            future.result()
        if self.transform is None:
            return None
        return tuple(part for future in self.stored for part in future.result())

    def close(self) -> None:
        for pool in (self.hasher, self.pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def _hash(digest: Any, batch: list[bytes | Pieces], first: bool) -> None:
    for position, data in enumerate(batch):
        if position or not first:
            digest.update(b",")
        if isinstance(data, Pieces):
            for piece in data.pieces:
                digest.update(piece)
        else:
            digest.update(data)


def _apply(transform: PartTransform, batch: list[bytes | Pieces]) -> list[bytes]:
    return [transform(bytes(data)) for data in batch]


def _chunks(header: bytes, at: int | None, parts: Sequence[bytes | Pieces]) -> Iterator[bytes]:
    if at is None:
        yield header
        return
    yield header[:at]
    for position, data in enumerate(parts):
        if position:
            yield b","
        if isinstance(data, Pieces):
            yield from data.pieces
        else:
            yield data
    yield header[at:]


def _with_appended(
    experiment: Experiment, appended: Mapping[str, Sequence[EventPart]]
) -> Experiment:
    trials = []
    for trial in experiment.trials:
        parts = None if trial.events else appended.get(trial.id)
        if parts:
            data = b"[" + b",".join(p.data for p in parts) + b"]"
            trial = trial.model_copy(update={"events": tuple(parse_events(data, trial.id))})
        trials.append(trial)
    return experiment.model_copy(update={"trials": tuple(trials)})


def _locate(experiment: Experiment, parts: list[bytes]) -> tuple[bytes, int]:
    body = stored_json(experiment)[0]
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
