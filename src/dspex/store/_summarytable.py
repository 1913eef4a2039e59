"""SQL tables of experiment summaries, and queries over them, shared by the sql backend and
the file backend's SQLite index.

Rows are not domain objects: :func:`summary_row` and :func:`summary_from_row` convert, here
only. Filters compile to SQL that agrees with :func:`dspex.store.query.matches` (the
conformance suite checks it on generated data).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Float,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    String,
    Table,
    Text,
    and_,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from dspex.store.query import ExperimentSummary, Query, fold, ranking_score

__all__ = [
    "ID",
    "micros",
    "select_count",
    "select_page",
    "summary_from_row",
    "summary_row",
    "summary_tables",
    "tag_rows",
]

# Ids compare as plain bytes everywhere (PostgreSQL would otherwise use the locale's order).
ID = String(30).with_variant(String(30, collation="C"), "postgresql")


def summary_tables(metadata: MetaData, prefix: str, *extra: Column[Any]) -> tuple[Table, Table]:
    """The experiments table (summary columns plus ``extra``) and its tags table."""
    experiments = Table(
        f"{prefix}experiments",
        metadata,
        Column("id", ID, primary_key=True),
        Column("program", Text, nullable=False),
        Column("optimizer", Text, nullable=False),  # '' when there is none
        Column("status", String(16), nullable=False),
        Column("created_us", BigInteger, nullable=False),  # microseconds since the epoch, UTC
        Column("hypothesis_id", ID),
        Column("question_lc", Text),  # research question, lower-cased in Python
        Column("best_score", Float),
        Column("score_scope", Text),  # ScoreScope.key of best_score: scores compare within one
        Column("sealed", Boolean, nullable=False),
        Column("summary", Text, nullable=False),  # the ExperimentSummary JSON queries return
        *extra,
        Index(f"ix_{prefix}exp_program_created", "program", "created_us", "id"),
        Index(f"ix_{prefix}exp_optimizer", "optimizer", "created_us"),
        Index(f"ix_{prefix}exp_status", "status", "created_us"),
        Index(f"ix_{prefix}exp_created", "created_us", "id"),
        Index(f"ix_{prefix}exp_hypothesis", "hypothesis_id"),
        Index(f"ix_{prefix}exp_score", "best_score", "id"),
        Index(f"ix_{prefix}exp_scope_score", "score_scope", "best_score", "id"),
    )
    tags = Table(
        f"{prefix}tags",
        metadata,
        Column("experiment_id", ID, nullable=False),
        Column("tag", Text, nullable=False),
        PrimaryKeyConstraint("experiment_id", "tag"),
        Index(f"ix_{prefix}tags_tag", "tag", "experiment_id"),
    )
    return experiments, tags


def micros(moment: datetime) -> int:
    """A UTC datetime as integer microseconds since the epoch (exact, sorts everywhere)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def text_key(value: str) -> str:
    # PostgreSQL text cannot hold NUL; filter values never contain it (Query refuses it).
    return value.replace("\x00", "\ufffd")


class ascii_lower(FunctionElement[str]):
    """``lower()`` of ASCII letters only, as :func:`dspex.store.query.fold`: SQLite's
    ``lower()`` does that; PostgreSQL's does it under the C collation."""

    inherit_cache = True
    type = Text()


@compiles(ascii_lower)
def _lower(element: ascii_lower, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(ascii_lower, "postgresql")
def _lower_c(element: ascii_lower, compiler: Any, **kw: Any) -> str:
    return f'lower(({compiler.process(element.clauses, **kw)}) COLLATE "C")'


def summary_row(summary: ExperimentSummary) -> dict[str, Any]:
    """The indexed columns of one summary."""
    question = summary.research_question
    return {
        "id": summary.id,
        "program": text_key(summary.program),
        "optimizer": text_key(summary.optimizer or ""),
        "status": summary.status.value,
        "created_us": micros(summary.created_at),
        "hypothesis_id": summary.hypothesis_id,
        "question_lc": None if question is None else text_key(question.lower()),
        "best_score": ranking_score(summary),  # NaN and inf rank as no score (query.py)
        "score_scope": text_key(summary.score_scope.key) if summary.score_scope else None,
        "sealed": summary.sealed,
        "summary": summary.to_json(),
    }


def tag_rows(summary: ExperimentSummary) -> list[dict[str, str]]:
    return [{"experiment_id": summary.id, "tag": text_key(t)} for t in set(summary.tags)]


def summary_from_row(text: str) -> ExperimentSummary:
    return ExperimentSummary.from_json(text)


def _where(t: Table, tags: Table, q: Query) -> list[ColumnElement[bool]]:
    c = t.c
    where: list[ColumnElement[bool]] = []
    if q.hypothesis_id is not None:
        where.append(c.hypothesis_id == q.hypothesis_id)
    if q.hypothesis_text is not None:
        where.append(c.question_lc.contains(text_key(q.hypothesis_text.lower()), autoescape=True))
    if q.program is not None:
        where.append(ascii_lower(c.program) == fold(text_key(q.program)))
    if q.optimizer is not None:
        where.append(ascii_lower(c.optimizer) == fold(text_key(q.optimizer)))
    if q.statuses:
        where.append(c.status.in_([s.value for s in q.statuses]))
    if q.tags:
        where.append(_has_tags(c, tags, q.tags))
    if q.created_after is not None:
        where.append(c.created_us >= micros(q.created_after))
    if q.created_before is not None:
        where.append(c.created_us < micros(q.created_before))
    where += _score_where(c, q)
    if q.after is not None:
        where.append(_after(c, q))
    return where


def _score_where(c: Any, q: Query) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if q.scope is not None:
        where.append(c.score_scope == text_key(q.scope))
    if q.min_score is not None:
        where.append(c.best_score >= q.min_score)
    if q.max_score is not None:
        where.append(c.best_score <= q.max_score)
    return where


_FEW_TAGS = 4


def _has_tags(c: Any, tags: Table, wanted: tuple[str, ...]) -> ColumnElement[bool]:
    """Experiments that have every tag in ``wanted``.

    A few tags: one indexed EXISTS each, which stops early under a LIMIT. More: one
    grouped subquery (the tags each experiment has among them, counted), whatever their
    number; PostgreSQL plans many EXISTS joins in time exponential in their number.
    """
    keys = sorted({text_key(tag) for tag in wanted})
    if len(keys) <= _FEW_TAGS:
        return and_(
            *(exists().where(and_(tags.c.experiment_id == c.id, tags.c.tag == k)) for k in keys)
        )
    having_all = (
        select(tags.c.experiment_id)
        .where(tags.c.tag.in_(keys))
        .group_by(tags.c.experiment_id)
        .having(func.count() == len(keys))
    )
    matches: ColumnElement[bool] = c.id.in_(having_all)
    return matches


def _after(c: Any, q: Query) -> ColumnElement[bool]:
    assert q.after is not None
    value, last_id = q.after[0], q.after[1]
    if q.order_by == "created":
        at = micros(value)
        return or_(c.created_us < at, and_(c.created_us == at, c.id < last_id))
    if value is None:  # the last row had no score: only unscored rows with smaller ids follow
        return and_(c.best_score.is_(None), c.id < last_id)
    return or_(
        c.best_score.is_(None),
        c.best_score < value,
        and_(c.best_score == value, c.id < last_id),
    )


def select_page(t: Table, tags: Table, q: Query) -> Select[Any]:
    """The page of summary JSON texts that ``q`` asks for, in its order."""
    if q.order_by == "score":
        order = [t.c.best_score.is_(None), t.c.best_score.desc(), t.c.id.desc()]
    else:
        order = [t.c.created_us.desc(), t.c.id.desc()]
    stmt = select(t.c.summary).where(*_where(t, tags, q)).order_by(*order).limit(q.limit)
    return stmt.offset(q.offset) if q.offset else stmt


def select_count(t: Table, tags: Table, q: Query) -> Select[Any]:
    """How many rows match ``q``'s filters (paging ignored)."""
    unpaged = dataclasses.replace(q, after=None)
    return select(func.count()).select_from(t).where(*_where(t, tags, unpaged))
