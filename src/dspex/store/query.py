"""Query filters and the lightweight experiment summaries that queries return.

Filters are validated once, here, so that every backend sees the same clean
:class:`Query` and every caller gets the same messages::

    >>> Query.parse({"program": "qa", "created_after": "2026-11-01", "limit": 10}).limit
    10
    >>> Query.parse({"programme": "qa"})
    Traceback (most recent call last):
    ...
    dspex.errors.InvalidQueryError: unknown filter 'programme'; did you mean 'program'? ...
"""

from __future__ import annotations

import base64
import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import Field

from dspex.errors import InvalidQueryError
from dspex.ids import is_valid_id
from dspex.model import Experiment, ExperimentStatus, Record, ScoreScope, VerdictOutcome, scope_of
from dspex.model._base import ExperimentId, HypothesisId, TrialId, UtcDatetime

__all__ = [
    "DEFAULT_LIMIT",
    "FILTERS",
    "MAX_LIMIT",
    "MAX_LIST_FILTER",
    "MAX_OFFSET",
    "MAX_TAGS",
    "ExperimentSummary",
    "Query",
    "fold",
    "ranking_score",
    "summary_of",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_OFFSET = 2**53 - 1  # the largest integer every JSON client keeps exactly
MAX_LIST_FILTER = 100
"""The most values any list filter (``status``, ``tags``) may name in one query, refused
here, before any backend builds a query (PostgreSQL takes at most 65,535 parameters)."""
MAX_TAGS = MAX_LIST_FILTER

FILTERS: dict[str, str] = {
    "hypothesis": "a hypothesis id (hyp_...), or text contained in its research question",
    "program": "the program name (ASCII letters in any case: QA matches qa)",
    "optimizer": "the optimizer name in any case (simba matches SIMBA); 'none' for evaluations",
    "status": f"one of {', '.join(s.value for s in ExperimentStatus)} (or a list of at most "
    f"{MAX_LIST_FILTER} of them)",
    "tags": f"a tag or a list of at most {MAX_TAGS} tags; an experiment matches when it "
    "has all of them",
    "created_after": "an ISO date or UTC datetime; created at or after it",
    "created_before": "an ISO date or UTC datetime; created strictly before it",
    "scope": "the example set and metric of the best score: its key <fingerprint>:<metric> "
    "(dspex experiments show prints it), or an experiment id (exp_...) for that experiment's "
    "set; required by min_score, max_score and order_by=score",
    "min_score": "a number; best score at least this (with scope)",
    "max_score": "a number; best score at most this (with scope)",
    "limit": f"1..{MAX_LIMIT} (default {DEFAULT_LIMIT})",
    "offset": f"an integer from 0 to {MAX_OFFSET}",
    "cursor": "the next_cursor of a previous page",
    "order_by": "created (newest first, the default) or score (highest first, with scope)",
}
SCORE_FILTERS = ("min_score", "max_score")


class ExperimentSummary(Record):
    """One experiment as a query returns it: no trials, no events.

    ``score_scope`` is the example set and metric of ``best_score``; ``verdict`` the
    outcome of the hypothesis's verdict, when there is one.
    """

    id: ExperimentId
    name: str
    program: str
    optimizer: str | None = None
    status: ExperimentStatus
    created_at: UtcDatetime
    completed_at: UtcDatetime | None = None
    tags: tuple[str, ...] = ()
    hypothesis_id: HypothesisId | None = None
    research_question: str | None = None
    best_score: float | None = None
    best_trial_id: TrialId | None = None
    score_scope: ScoreScope | None = None
    verdict: VerdictOutcome | None = None
    trial_count: int = Field(default=0, ge=0)
    sealed: bool = False
    checksum: str | None = None


def summary_of(experiment: Experiment, *, sealed: bool, checksum: str | None) -> ExperimentSummary:
    """The summary of ``experiment`` (used by every backend, so they agree)."""
    return ExperimentSummary(
        id=experiment.id,
        name=experiment.name,
        program=experiment.program.name,
        optimizer=experiment.optimizer.name if experiment.optimizer else None,
        status=experiment.status,
        created_at=experiment.created_at,
        completed_at=experiment.completed_at,
        tags=experiment.tags,
        hypothesis_id=experiment.hypothesis.id if experiment.hypothesis else None,
        research_question=experiment.hypothesis.research_question
        if experiment.hypothesis
        else None,
        best_score=experiment.best_score,
        best_trial_id=experiment.best_trial_id,
        score_scope=scope_of(experiment.best_trial) if experiment.best_trial else None,
        verdict=_verdict(experiment),
        trial_count=len(experiment.trials),
        sealed=sealed,
        checksum=checksum,
    )


def _verdict(experiment: Experiment) -> VerdictOutcome | None:
    hypothesis = experiment.hypothesis
    return hypothesis.verdict.outcome if hypothesis and hypothesis.verdict else None


@dataclass(frozen=True)
class Query:
    """Validated filters. Build it with :meth:`parse`; backends read its fields."""

    hypothesis_id: str | None = None
    hypothesis_text: str | None = None
    program: str | None = None
    optimizer: str | None = None  # "" matches experiments without an optimizer
    statuses: tuple[ExperimentStatus, ...] = ()
    tags: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    scope: str | None = None  # a ScoreScope.key
    scope_experiment: str | None = None  # the store replaces it with that experiment's key
    min_score: float | None = None
    max_score: float | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    order_by: Literal["created", "score"] = "created"
    after: tuple[Any, str] | None = field(default=None)  # keyset cursor: (sort value, id)

    @classmethod
    def parse(cls, filters: Mapping[str, Any] | None = None) -> Query:
        """Validate ``filters``; raise :class:`InvalidQueryError` naming the bad key or value."""
        if filters is None:
            return cls()
        if not isinstance(filters, Mapping):
            raise InvalidQueryError(
                "filters must be a mapping such as {'program': 'qa'}, "
                f"not {type(filters).__name__}"
            )
        values: dict[str, Any] = {}
        for key, value in filters.items():
            if key not in FILTERS:
                raise _unknown(key)
            if value is None:
                continue
            _PARSERS[key](values, value)
        if values.get("after") is not None and values.get("offset"):
            raise InvalidQueryError("use either offset or cursor, not both")
        _require_scope(values)
        query = cls(**values)
        if query.after is not None and query.after_order != query.order_by:
            raise InvalidQueryError("this cursor belongs to a query with another order_by")
        return query

    @property
    def after_order(self) -> str | None:
        return None if self.after is None else ("score" if len(self.after) == 3 else "created")

    def next_cursor(self, last: ExperimentSummary) -> str:
        """The cursor that continues after ``last`` (an item of this query's page)."""
        if self.order_by == "score":
            key: list[Any] = [ranking_score(last), last.id, "score"]
        else:
            key = [last.created_at.isoformat(), last.id]
        return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _require_scope(values: dict[str, Any]) -> None:
    """Scores are compared only over one example set: score filters need ``scope``."""
    if values.get("scope") or values.get("scope_experiment"):
        return
    used = [k for k in SCORE_FILTERS if values.get(k) is not None]
    if values.get("order_by") == "score":
        used.append("order_by=score")
    if used:
        raise InvalidQueryError(
            f"{' and '.join(used)} compare{'s' if len(used) == 1 else ''} best scores, and "
            "scores are comparable only over the same examples with the same metric: add "
            "scope=<fingerprint>:<metric> (printed by `dspex experiments show ID`) or "
            "scope=<experiment id> to compare with that experiment's example set"
        )


def _unknown(key: object) -> InvalidQueryError:
    hint = difflib.get_close_matches(str(key), list(FILTERS), n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    valid = "; ".join(f"{k}: {v}" for k, v in FILTERS.items())
    return InvalidQueryError(f"unknown filter {key!r}{suggestion} Valid filters: {valid}")


def _bad(key: str, value: Any, expected: str) -> InvalidQueryError:
    return InvalidQueryError(f"filter {key!r} has a bad value {value!r}: expected {expected}")


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 500 or "\x00" in value:
        raise _bad(key, value, "a non-empty string of at most 500 characters")
    return value


def _hypothesis(values: dict[str, Any], value: Any) -> None:
    text = _text("hypothesis", value)
    if is_valid_id(text, "hyp"):
        values["hypothesis_id"] = text
    else:
        values["hypothesis_text"] = text


def _scope(values: dict[str, Any], value: Any) -> None:
    text = _text("scope", value)
    if is_valid_id(text, "exp"):
        values["scope_experiment"] = text
    elif ":" in text.strip(":"):
        values["scope"] = text
    else:
        raise _bad(
            "scope",
            value,
            "a score scope key <fingerprint>:<metric> such as 'ex_1b6503d9c25be673:exact_match', "
            "or an experiment id (exp_...)",
        )


def _datetime(key: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _bad(key, value, "an ISO date such as 2026-11-01 or datetime") from None
    else:
        raise _bad(key, value, "an ISO date string, a date or a datetime")
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-14:00 is in year 10000 in UTC
        raise _bad(key, value, "a moment between the years 1 and 9999 in UTC") from None


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(key, value, "a finite number")
    return float(value)


def _int(key: str, value: Any, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        raise _bad(key, value, f"an integer from {low}" + (f" to {high}" if high else " up"))
    return value


def _statuses(values: dict[str, Any], value: Any) -> None:
    items = [value] if isinstance(value, str | ExperimentStatus) else value
    _at_most("status", items, "statuses")
    try:
        values["statuses"] = tuple(ExperimentStatus(v) for v in items)
    except (ValueError, TypeError):
        raise _bad("status", value, FILTERS["status"]) from None


def _tags(values: dict[str, Any], value: Any) -> None:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset) or not items:
        raise _bad("tags", value, FILTERS["tags"])
    _at_most("tags", items, "tags")
    values["tags"] = tuple(sorted(_text("tags", v) for v in items))


def _at_most(key: str, items: Any, what: str) -> None:
    """Refuse a list filter longer than :data:`MAX_LIST_FILTER`, whatever its values."""
    size = len(items) if hasattr(items, "__len__") else None
    if size is not None and size > MAX_LIST_FILTER:
        raise InvalidQueryError(
            f"filter {key!r} names {size:,} {what}; at most {MAX_LIST_FILTER} are allowed in "
            "one query (filter on fewer, or on program, optimizer or dates)"
        )


def _order(values: dict[str, Any], value: Any) -> None:
    if value not in ("created", "score"):
        raise _bad("order_by", value, "'created' (newest first) or 'score' (highest first)")
    values["order_by"] = value


def _cursor(values: dict[str, Any], value: Any) -> None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(_text("cursor", value).encode()))
        if len(decoded) == 3 and decoded[2] == "score":
            score = None if decoded[0] is None else float(decoded[0])
            if score is not None and not math.isfinite(score):
                raise ValueError
            values["after"] = (score, str(decoded[1]), "score")
        else:
            values["after"] = (_datetime("cursor", decoded[0]), str(decoded[1]))
        if not is_valid_id(values["after"][1], "exp"):
            raise ValueError
    except (ValueError, TypeError, IndexError, InvalidQueryError):
        raise _bad("cursor", value, "the next_cursor of a previous page") from None


_PARSERS: dict[str, Any] = {
    "hypothesis": _hypothesis,
    "program": lambda v, x: v.__setitem__("program", _text("program", x)),
    "optimizer": lambda v, x: v.__setitem__(
        "optimizer", "" if x == "none" else _text("optimizer", x)
    ),
    "status": _statuses,
    "tags": _tags,
    "created_after": lambda v, x: v.__setitem__("created_after", _datetime("created_after", x)),
    "created_before": lambda v, x: v.__setitem__("created_before", _datetime("created_before", x)),
    "scope": _scope,
    "min_score": lambda v, x: v.__setitem__("min_score", _number("min_score", x)),
    "max_score": lambda v, x: v.__setitem__("max_score", _number("max_score", x)),
    "limit": lambda v, x: v.__setitem__("limit", _int("limit", x, 1, MAX_LIMIT)),
    "offset": lambda v, x: v.__setitem__("offset", _int("offset", x, 0, MAX_OFFSET)),
    "cursor": _cursor,
    "order_by": _order,
}


def ranking_score(summary: ExperimentSummary) -> float | None:
    """The best score as queries compare it: a non-finite score (NaN, +inf, -inf) is kept
    in the records as recorded, but ranks and filters as no score at all.

    >>> s = ExperimentSummary(id="exp_01ARZ3NDEKTSV4RRFFQ69G5FAV", name="n", program="p",
    ...                       status="completed", created_at="2026-01-01T00:00:00Z",
    ...                       best_score=float("nan"))
    >>> ranking_score(s) is None, ranking_score(s.model_copy(update={"best_score": 0.5}))
    (True, 0.5)
    """
    score = summary.best_score
    return score if score is not None and math.isfinite(score) else None


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(name: str) -> str:
    """``name`` as program and optimizer filters compare it: ASCII letters lower-cased,
    as SQLite's and PostgreSQL's (C collation) ``lower()`` do, every other character as is.

    >>> fold("SIMBA"), fold("MIPROv2"), fold("Ärger")
    ('simba', 'miprov2', 'Ärger')
    """
    return name.translate(_ASCII_LOWER)


def matches(query: Query, summary: ExperimentSummary) -> bool:
    """Whether ``summary`` passes every filter of ``query`` (paging aside).

    The reference semantics: backends that filter in SQL must agree with it, and the
    conformance suite checks that they do. (Checks return early: the memory backend
    calls this for every candidate row.)
    """
    if query.program is not None and fold(summary.program) != fold(query.program):
        return False
    if query.optimizer is not None and fold(summary.optimizer or "") != fold(query.optimizer):
        return False
    if query.statuses and summary.status not in query.statuses:
        return False
    if query.created_after is not None and summary.created_at < query.created_after:
        return False
    if query.created_before is not None and summary.created_at >= query.created_before:
        return False
    if query.tags and not set(query.tags) <= set(summary.tags):
        return False
    if query.hypothesis_id is not None and summary.hypothesis_id != query.hypothesis_id:
        return False
    if query.hypothesis_text is not None and (
        query.hypothesis_text.lower() not in (summary.research_question or "").lower()
    ):
        return False
    if query.scope is not None and (
        summary.score_scope is None or summary.score_scope.key != query.scope
    ):
        return False
    return _score_matches(query, ranking_score(summary))


def _score_matches(query: Query, score: float | None) -> bool:
    if query.min_score is not None and (score is None or score < query.min_score):
        return False
    return query.max_score is None or (score is not None and score <= query.max_score)


def sort_key(query: Query, summary: ExperimentSummary) -> tuple[Any, ...]:
    """Ascending key whose reverse is the query's order (newest or highest first, then id)."""
    if query.order_by == "score":
        score = ranking_score(summary)
        return (score is not None, 0.0 if score is None else score, summary.id)
    return (summary.created_at, summary.id)


def after_bound(query: Query) -> tuple[Any, ...] | None:
    """The :func:`sort_key` of the row a cursor continues after (rows below it follow)."""
    if query.after is None:
        return None
    if query.order_by == "score":
        score, last_id = query.after[0], query.after[1]
        return (score is not None, 0.0 if score is None else score, last_id)
    return (query.after[0], query.after[1])


def page(query: Query, summaries: list[ExperimentSummary]) -> list[ExperimentSummary]:
    """Filter, order and page ``summaries`` in memory: the reference that every backend's
    answer is compared with."""
    selected = sorted(
        (s for s in summaries if matches(query, s)), key=lambda s: sort_key(query, s), reverse=True
    )
    bound = after_bound(query)
    if bound is not None:
        selected = [s for s in selected if sort_key(query, s) < bound]
    return selected[query.offset : query.offset + query.limit]
