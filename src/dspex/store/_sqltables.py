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

import zlib
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

from dspex.errors import CorruptRecordError
from dspex.store._summarytable import ID, summary_row, summary_tables, tag_rows
from dspex.store.codec import EncodedRecord
from dspex.store.query import ExperimentSummary

__all__ = [
    "compress",
    "decompress",
    "experiment_rows",
    "experiments",
    "metadata",
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
    PrimaryKeyConstraint("experiment_id", "trial_id"),
    ForeignKeyConstraint(["experiment_id"], ["dspex_experiments.id"], ondelete="CASCADE"),
)

# Level 1: LM payloads shrink 3-6x at a few hundred MB/s; higher levels gain little more.
_LEVEL = 1


def compress(data: bytes | memoryview) -> bytes:
    return zlib.compress(data, _LEVEL)


def decompress(record_id: str, data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error as exc:
        raise CorruptRecordError(record_id, f"stored data does not decompress: {exc}") from exc


def experiment_rows(record: EncodedRecord) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The experiments row and the trial rows of a sealed record."""
    header, at = record.header()
    row = {
        **summary_row(record.summary),
        "checksum": record.checksum,
        "header": compress(header),
        "trials_at": at,
    }
    trial_rows = [
        {
            "experiment_id": record.id,
            "trial_id": tid,
            "position": position,
            "payload": compress(record.trial(position)),
        }
        for position, (tid, _, _) in enumerate(record.spans)
    ]
    return row, trial_rows


def running_row(summary: ExperimentSummary, header: bytes) -> dict[str, Any]:
    return {**summary_row(summary), "checksum": None, "header": compress(header), "trials_at": None}


def summary_tag_rows(summary: ExperimentSummary) -> list[dict[str, str]]:
    return tag_rows(summary)
