"""Studies in the file store: ``<root>/studies/<name>.study``, one file per study.

The file is two lines: a head (the study's summary, its revision and the SHA-256 of the
record), then the record's JSON. A listing reads heads only; a load checks the record
against its head. Files are replaced atomically (temp file, fsync, rename) under the
store's writers' lock, so a reader sees one revision or the next, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from dspex.errors import CorruptRecordError, ValidationError
from dspex.model import StudyRecord, StudySummary
from dspex.store._filerecord import ensure_dir, write_atomic

__all__ = ["StudyFiles"]

logger = logging.getLogger(__name__)

_SUFFIX = ".study"


class StudyFiles:
    """Reads and writes the study files under ``root``; the caller holds the lock to write."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "studies"
        self.temp = root / "tmp"

    def path(self, name: str) -> Path:
        return self.folder / f"{name}{_SUFFIX}"

    def revision(self, name: str) -> int:
        """The stored revision (0 when there is none). A damaged file is an error: a
        writer must not replace what it cannot read."""
        head = self._head(self.path(name), name)
        return 0 if head is None else head.revision

    def write(self, study: StudyRecord) -> None:
        body = study.to_json_bytes()
        head = {
            "summary": study.summary().to_dict(),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        ensure_dir(self.folder)
        line = json.dumps(head, separators=(",", ":")).encode() + b"\n"
        write_atomic(self.path(study.name), [line, body], temp_dir=self.temp)

    def load(self, name: str) -> StudyRecord | None:
        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            return None
        head_line, _, body = data.partition(b"\n")
        digest = _parse_head(head_line, name)[1]
        if hashlib.sha256(body).hexdigest() != digest:
            raise CorruptRecordError(name, "the study file does not match its checksum")
        try:
            study = StudyRecord.from_json(body)
        except ValidationError as exc:
            raise CorruptRecordError(name, f"the study does not parse: {exc}") from exc
        if study.name != name:
            raise CorruptRecordError(name, f"its file holds study {study.name!r}")
        return study

    def summaries(self) -> list[StudySummary]:
        """Every readable study's summary; a damaged file is left out and logged."""
        found = []
        for path in sorted(self.folder.glob(f"*{_SUFFIX}")) if self.folder.is_dir() else []:
            name = path.name.removesuffix(_SUFFIX)
            try:
                head = self._head(path, name)
            except CorruptRecordError as exc:
                logger.warning("dspex: %s", exc)
                continue
            if head is not None:
                found.append(head)
        return found

    def _head(self, path: Path, name: str) -> StudySummary | None:
        try:
            with path.open("rb") as handle:
                line = handle.readline(1 << 20)
        except FileNotFoundError:
            return None
        return _parse_head(line, name)[0]


def _parse_head(line: bytes, name: str) -> tuple[StudySummary, str]:
    try:
        head = json.loads(line)
        summary = StudySummary.from_dict(head["summary"])
        digest = str(head["sha256"])
    except (ValueError, KeyError, TypeError) as exc:  # ValidationError is a ValueError
        raise CorruptRecordError(name, f"the study file's head does not parse: {exc}") from exc
    if summary.name != name:
        raise CorruptRecordError(name, f"its file holds study {summary.name!r}")
    return summary, digest
