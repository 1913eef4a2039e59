"""The experiment list's query string: ResultStore filters, and how the page reads them.

>>> date_part("2026-11-30T10:00:00")
'2026-11-30'
>>> active_filters({"status": ["completed", "failed"], "limit": 10})
[('status', 'completed, failed')]
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

__all__ = ["DATE_FILTERS", "active_filters", "date_part", "list_filters"]

_MULTI = ("status", "tags")
_PAGING = ("limit", "offset", "cursor", "order_by")
DATE_FILTERS = ("created_after", "created_before")


def list_filters(request: Request) -> dict[str, Any]:
    """Query parameters as ResultStore filters (repeated status/tags become lists)."""
    filters: dict[str, Any] = {}
    for key in request.query_params:
        if key == "token":
            continue
        values = [v for v in request.query_params.getlist(key) if v != ""]
        if key in _MULTI:  # the list form's text box takes "completed,failed"
            values = [part.strip() for v in values for part in v.split(",") if part.strip()]
        if not values:
            continue
        if key in _MULTI and len(values) > 1:
            filters[key] = values
        else:
            filters[key] = _typed(key, values[-1])
    return filters


def active_filters(filters: dict[str, Any]) -> list[tuple[str, str]]:
    """The filters that narrow the list (paging and order do not), as the notice reads them."""
    names = {"hypothesis": "hypothesis contains", "min_score": "best score ≥",
             "max_score": "best score ≤", "created_after": "created from",
             "created_before": "created before"}  # fmt: skip
    return [
        (names.get(k, k), ", ".join(v) if isinstance(v, list) else str(v))
        for k, v in filters.items()
        if k not in _PAGING
    ]


def date_part(value: str) -> str:
    """What a date input can show: ``2026-11-30`` of ``2026-11-30[T...]``, else nothing."""
    head = value[:10]
    return head if len(head) == 10 and head[4] == "-" and head[7] == "-" else ""


def _typed(key: str, value: str) -> Any:
    """Numbers arrive as text; convert those the store expects as numbers (and leave a bad
    one as text, so that the store's own message names it)."""
    kind = {"min_score": float, "max_score": float, "limit": int, "offset": int}.get(key)
    if kind is None:
        return value
    try:
        return kind(value)
    except ValueError:
        return value
