"""Write an experiment's trials and example results as tables: CSV, JSON lines or Parquet.

    >>> import io
    >>> out = io.StringIO()
    >>> write_rows([{"trial": "baseline", "score": 0.4}], out, "csv")
    >>> out.getvalue().splitlines()
    ['trial,score', 'baseline,0.4']

Rows come from :mod:`dspex.model.rows`; Parquet needs pyarrow (``pip install
'dspex[analysis]'``). ``dspex export EXP --format csv|jsonl|parquet`` uses
:func:`export_experiment`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from dspex.analysis.studies import cell_rows
from dspex.errors import ValidationError
from dspex.extras import require
from dspex.model import Experiment, StudyRecord
from dspex.model.rows import Row, example_rows, trial_rows

__all__ = ["FORMATS", "TABLES", "export_experiment", "export_study", "write_rows"]

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl", "parquet")
TABLES = {"trials": trial_rows, "examples": example_rows}


def _columns(rows: Sequence[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def write_rows(rows: Sequence[Row], out: IO[Any], fmt: str) -> None:
    """Write ``rows`` to ``out`` (text for csv and jsonl, binary for parquet)."""
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=_columns(rows), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, allow_nan=False, default=str) + "\n")
    elif fmt == "parquet":
        _write_parquet(rows, out)
    else:
        raise ValidationError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")


TIMESTAMPS = ("started_at", "finished_at", "created_at", "completed_at")
"""Columns that hold a moment: ISO 8601 text in CSV and JSON lines, a UTC timestamp
(microseconds) in Parquet."""


def _write_parquet(rows: Sequence[Row], out: IO[bytes]) -> None:
    pyarrow = require("pyarrow", "analysis", "Parquet (or export --format csv or jsonl)")
    require("pyarrow.parquet", "analysis", "Parquet")
    columns = _columns(rows)
    data: dict[str, Any] = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        if column in TIMESTAMPS:
            data[column] = pyarrow.array(
                [_moment(v) for v in values], type=pyarrow.timestamp("us", tz="UTC")
            )
        else:
            data[column] = values
    pyarrow.parquet.write_table(pyarrow.Table.from_pydict(data), out)


def _moment(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _write(path: Path, rows: Sequence[Row], fmt: str) -> None:
    if fmt == "parquet":
        with path.open("wb") as binary:
            write_rows(rows, binary, fmt)
    else:
        with path.open("w", encoding="utf-8", newline="") as text:
            write_rows(rows, text, fmt)


def export_study(study: StudyRecord, directory: Path, fmt: str) -> Path:
    """Write ``study``'s cells, one row each, to ``directory/<name>.cells.<fmt>``."""
    if fmt not in FORMATS:
        raise ValidationError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{study.name}.cells.{fmt}"
    _write(path, cell_rows(study), fmt)
    return path


def export_experiment(
    experiment: Experiment,
    directory: Path,
    fmt: str,
    tables: Sequence[str] = tuple(TABLES),
) -> list[Path]:
    """Write each of ``tables`` of ``experiment`` to ``directory/<id>.<table>.<fmt>``."""
    if fmt not in FORMATS:
        raise ValidationError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValidationError(f"unknown table {unknown[0]!r}; use {' or '.join(TABLES)}")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        path = directory / f"{experiment.id}.{table}.{fmt}"
        _write(path, TABLES[table](experiment), fmt)
        written.append(path)
    return written
