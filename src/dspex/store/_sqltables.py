"""Tables of the sql backend and the one place where rows and records convert.

``dspex_experiments`` holds a summary row per experiment (the indexed filter columns and
the summary JSON), plus the compressed header: the record's JSON without its trials.
``dspex_trials`` holds one compressed trial JSON per row, so one trial loads alone.
A sealed record is the header with its trials spliced back in at ``trials_at`` (see
:mod:`dspex.store.codec`), byte for byte what was archived.

The schema itself is created by the Alembic migrations in ``migrations/``; these
definitions must match them (a test compares the two).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from dspex.errors import CorruptRecordError, ValidationError
from dspex.model import Experiment, Trial
from dspex.model.eventsummary import EventSummary, summarize_events
from dspex.store._events import EventIndex
from dspex.store._summarytable import ID, summary_row, summary_tables, tag_rows
from dspex.store.codec import EncodedRecord
from dspex.store.query import ExperimentSummary

__all__ = [
    "compress",
    "compress_many",
    "decompress",
    "event_parts",
    "index_of",
    "index_text",
    "experiment_rows",
    "experiments",
    "metadata",
    "studies",
    "tags",
    "trials",
]

metadata = MetaData()
experiments, tags = summary_tables(
    metadata,
    "dspex_",
    Column("checksum", String(80)),  # set when sealed
    Column("header", LargeBinary, nullable=False),  # zlib: the JSON without trials
    Column("trials_at", Integer),  # where the trials go back into the header
)
trials = Table(
    "dspex_trials",
    metadata,
    Column("experiment_id", ID, nullable=False),
    Column("trial_id", ID, nullable=False),
    Column("position", Integer, nullable=False),  # order in the record (the index while running)
    Column("payload", LargeBinary, nullable=False),  # zlib: the trial's JSON
    Column("events", Text),  # where its events are in that JSON (EventIndex.to_list)
    # Derived, when sealed (migration 0006): the trial's JSON without its events, and what
    # views need from its events (EventSummary), each after the start of its SHA-256.
    Column("header", Text),
    Column("summary", Text),
    PrimaryKeyConstraint("experiment_id", "trial_id"),
    ForeignKeyConstraint(["experiment_id"], ["dspex_experiments.id"], ondelete="CASCADE"),
)

# Events appended to a trial of a running experiment (ResultStore.append_events), one row
# per part: the events first_seq .. last_seq as comma-separated JSON, compressed.
event_parts = Table(
    "dspex_event_parts",
    metadata,
    Column("experiment_id", ID, nullable=False),
    Column("trial_id", ID, nullable=False),
    Column("first_seq", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    PrimaryKeyConstraint("experiment_id", "trial_id", "first_seq"),
    ForeignKeyConstraint(["experiment_id"], ["dspex_experiments.id"], ondelete="CASCADE"),
)

# One row per study: its summary (what listings return) and its compressed record.
studies = Table(
    "dspex_studies",
    metadata,
    Column(
        "name",
        String(100).with_variant(String(100, collation="C"), "postgresql"),
        primary_key=True,
    ),
    Column("revision", Integer, nullable=False),
    Column("updated_us", BigInteger, nullable=False),  # microseconds since the epoch, UTC
    Column("summary", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Index("ix_dspex_studies_updated", "updated_us", "name"),
)


def _zstd() -> Any:
    try:
        import zstandard
    except ModuleNotFoundError:  # zlib then; both are read back whichever wrote them
        return None
    return zstandard


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHECKED = b"DXS1"  # then the SHA-256 of the JSON (32 bytes), then its compressed form
_DIGEST = hashlib.sha256().digest_size
_PARALLEL_BYTES = 4 << 20  # below this, threads cost more than they save
_local = threading.local()  # one compressor per thread: a context is not thread-safe


def compress(data: bytes | memoryview) -> bytes:
    """``data`` as stored: its SHA-256, then Zstandard level 1 (LM payloads shrink about
    4x at hundreds of MB/s), else zlib. :func:`decompress` checks the digest, so a damaged
    payload is an error, never different data."""
    digest = hashlib.sha256(data).digest()
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        zstd = _zstd()
        if zstd is None:
            return b"".join((_CHECKED, digest, zlib.compress(data, 1)))
        compressor = _local.compressor = zstd.ZstdCompressor(level=1)
    return b"".join((_CHECKED, digest, compressor.compress(data)))


def compress_many(parts: list[bytes]) -> list[bytes]:
    """Each part compressed; large batches on several threads (compression frees the GIL)."""
    workers = min(4, os.cpu_count() or 1)
    if workers < 2 or sum(map(len, parts)) < _PARALLEL_BYTES:
        return [compress(p) for p in parts]
    size = -(-len(parts) // workers)
    batches = [parts[i : i + size] for i in range(0, len(parts), size)]
    with ThreadPoolExecutor(workers) as pool:
        done = pool.map(lambda batch: [compress(p) for p in batch], batches)
        return [payload for batch in done for payload in batch]


def has_digest(data: bytes) -> bool:
    """Whether a payload carries the SHA-256 of its JSON (checked by :func:`decompress`
    alone, without the record's checksum)."""
    return data[: len(_CHECKED)] == _CHECKED


def decompress(record_id: str, data: bytes) -> bytes:
    """What :func:`compress` stored; :class:`dspex.CorruptRecordError` naming ``record_id``
    when it does not decompress or does not match its digest.

    Payloads written before digests were stored (no ``DXS1`` prefix) are only checked by
    the compression format and, for a sealed record, the record's checksum.
    """
    if data[: len(_CHECKED)] != _CHECKED:
        return _inflate(record_id, data)
    start = len(_CHECKED) + _DIGEST
    expected = data[len(_CHECKED) : start]
    raw = _inflate(record_id, data[start:])
    if len(expected) != _DIGEST or hashlib.sha256(raw).digest() != expected:
        raise CorruptRecordError(record_id, "stored data does not match its checksum")
    return raw


def _inflate(record_id: str, data: bytes) -> bytes:
    zstd = _zstd()
    try:
        if data[:4] == _ZSTD_MAGIC:
            if zstd is None:
                raise CorruptRecordError(
                    record_id, "it is zstandard-compressed: pip install 'dspex[sql]' (zstandard)"
                )
            # Streamed: a damaged frame header cannot make it allocate its claimed size.
            inflater = zstd.ZstdDecompressor().decompressobj()
            raw = bytes(inflater.decompress(data))
            if not inflater.eof or inflater.unused_data:
                raise CorruptRecordError(record_id, "stored data is truncated or has extra bytes")
            return raw
        return zlib.decompress(data)
    except CorruptRecordError:
        raise
    except Exception as exc:  # zlib.error, zstandard.ZstdError
        raise CorruptRecordError(record_id, f"stored data does not decompress: {exc}") from exc


def experiment_rows(record: EncodedRecord) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The experiments row and the trial rows of a sealed record."""
    row = {
        **summary_row(record.summary),
        "checksum": record.checksum,
        "header": compress(record.header),
        "trials_at": record.at,
    }
    payloads = record.stored  # compressed while the record was encoded (see sql.part_transform)
    if payloads is None:
        payloads = tuple(compress_many([bytes(data) for _, data in record.trials]))
    indexes = record.events or (None,) * len(record.trials)
    summaries = record.summaries or (None,) * len(record.trials)
    trial_rows = [
        {
            "experiment_id": record.id,
            "trial_id": tid,
            "position": position,
            "payload": payload,
            "events": index_text(index),
            "header": None if index is None else checked_text(index.header(bytes(data)).decode()),
            "summary": None if summary is None else checked_text(summary.to_json()),
        }
        for position, ((tid, data), payload, index, summary) in enumerate(
            zip(record.trials, payloads, indexes, summaries, strict=True)
        )
    ]
    return row, trial_rows


def index_text(index: EventIndex | None) -> str | None:
    """An :class:`EventIndex` as stored: its JSON after the start of its SHA-256."""
    if index is None:
        return None
    text = json.dumps(index.to_list(), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16] + ":" + text


def checked_text(text: str) -> str:
    """Derived JSON as stored beside a record: after the start of its SHA-256."""
    return hashlib.sha256(text.encode()).hexdigest()[:16] + ":" + text


def checked_body(text: str | None) -> str | None:
    """What :func:`checked_text` stored, or None: none stored, or damaged."""
    if text is None:
        return None
    digest, _, body = text.partition(":")
    if hashlib.sha256(body.encode()).hexdigest()[:16] != digest:
        return None
    return body


def derived_problems(experiment: Experiment, rows: Sequence[Any]) -> Iterator[str]:
    """What is wrong with the headers and summaries kept beside a sealed record's trials
    (``rows``: trial_id, header, summary), checked against the record itself (``dspex
    store verify``; readers fall back to the record when a copy fails its digest)."""
    trials = {t.id: t for t in experiment.trials}
    for row in rows:
        trial = trials.get(row.trial_id)
        if trial is None:
            continue
        # either copy may be absent: a trial without an event index keeps no header
        kept = [(text, checked_body(text)) for text in (row.header, row.summary)]
        if any(text is not None and body is None for text, body in kept):
            yield f"trial {row.trial_id}: its kept header or summary does not match its checksum"
            continue
        (_, header), (_, summary) = kept
        try:
            kept_trial = Trial.from_json(header) if header is not None else None
            kept_summary = EventSummary.from_json(summary) if summary is not None else None
        except ValidationError:
            yield f"trial {row.trial_id}: its kept header or summary does not parse"
            continue
        if kept_trial is not None and kept_trial != trial.model_copy(update={"events": ()}):
            yield f"trial {row.trial_id}: its kept header is not the trial's"
        elif kept_summary is not None and kept_summary != summarize_events(trial.events):
            yield f"trial {row.trial_id}: its kept summary is not the one of its events"


def index_of(text: str | None) -> EventIndex | None:
    """The stored index, or None: none stored, or a damaged one (the trial is then parsed
    whole, from its checked payload)."""
    if text is None:
        return None
    digest, _, body = text.partition(":")
    if hashlib.sha256(body.encode()).hexdigest()[:16] != digest:
        return None
    try:
        return EventIndex.from_list(json.loads(body))
    except ValueError:
        return None


def running_row(summary: ExperimentSummary, header: bytes) -> dict[str, Any]:
    return {**summary_row(summary), "checksum": None, "header": compress(header), "trials_at": None}


def summary_tag_rows(summary: ExperimentSummary) -> list[dict[str, str]]:
    return tag_rows(summary)
