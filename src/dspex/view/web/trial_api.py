"""The trial JSON API, paged: the trial's header, then its events a range at a time.

::

    GET /api/experiments/E/trials/T
        the trial without its events: {..., "events": [], "event_count": N,
                                       "events_url": "/api/experiments/E/trials/T/events"}
    GET /api/experiments/E/trials/T/events?offset=0&limit=500
        {"total": N, "offset": 0, "limit": 500, "next": "...?offset=500&limit=500",
         "events": [...]}   (events in sequence order; next is null on the last page)

A page holds at most :data:`MAX_EVENTS` events and is written to the client event by
event, so no response is ever the whole trial (80 MB for 200,000 events) built in
memory. Events come from the store a range at a time (``ResultStore.read_events``,
``count_events``, ``get_trial(..., events=False)``); a store without them is read whole
once and the parsed events are kept in the app's cache (see :class:`StoreEvents`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

from pydantic_core import to_json

from dspex.errors import InvalidQueryError
from dspex.model import TraceEvent, Trial
from dspex.redact import redact
from dspex.store import ResultStore
from dspex.view.web.cache import ExperimentCache

__all__ = [
    "DEFAULT_EVENTS",
    "MAX_EVENTS",
    "StoreEvents",
    "event_json",
    "event_page",
    "kept_while_sent",
    "page_bounds",
    "trial_dict",
]

DEFAULT_EVENTS = 500
"""Events per page of ``/events`` when no ``limit`` is given."""

MAX_EVENTS = 5000
"""The largest ``limit`` ``/events`` accepts."""

_READ_CHUNK = 1000


class _RangedStore(Protocol):
    """The store's range reads (``ResultStore`` has them on every backend)."""

    def get_trial(self, experiment_id: str, trial_id: str, *, events: bool = True) -> Trial: ...

    def read_events(
        self, experiment_id: str, trial_id: str, offset: int = 0, limit: int | None = None
    ) -> list[TraceEvent]: ...

    def count_events(self, experiment_id: str, trial_id: str) -> int: ...


class StoreEvents:
    """A trial's header, event count and event ranges, from the store's range reads
    when it has them, else from the whole trial (parsed once, kept in ``cache``)."""

    def __init__(self, store: ResultStore, cache: ExperimentCache) -> None:
        self.store = store
        self.cache = cache
        self._ranged = cast(_RangedStore, store)
        self.ranged = hasattr(store, "read_events") and hasattr(store, "count_events")
        self.headers = "events" in inspect.signature(store.get_trial).parameters

    def header(self, experiment_id: str, trial_id: str) -> Trial:
        if self.headers:
            return self._ranged.get_trial(experiment_id, trial_id, events=False)
        return self._whole(experiment_id, trial_id).replace(events=())

    def count(self, experiment_id: str, trial_id: str) -> int:
        if self.ranged:
            return self._ranged.count_events(experiment_id, trial_id)
        return len(self._whole(experiment_id, trial_id).events)

    def read(self, experiment_id: str, trial_id: str, offset: int, limit: int) -> list[TraceEvent]:
        if self.ranged:
            return self._ranged.read_events(experiment_id, trial_id, offset, limit)
        return list(self._whole(experiment_id, trial_id).events[offset : offset + limit])

    def _whole(self, experiment_id: str, trial_id: str) -> Trial:
        return self.cache.kept(
            ("trial", experiment_id, trial_id),
            lambda: self.store.get_trial(experiment_id, trial_id),
        )


def page_bounds(offset: str | None, limit: str | None) -> tuple[int, int]:
    """``(offset, limit)`` from the query string; a clear error for anything else."""
    return _count("offset", offset, 0, None), _count("limit", limit, DEFAULT_EVENTS, MAX_EVENTS)


def _count(name: str, given: str | None, default: int, most: int | None) -> int:
    if given is None:
        return default
    try:
        value = int(given)
    except ValueError:
        value = -1
    low = 1 if name == "limit" else 0
    if value < low or (most is not None and value > most):
        bound = f"{low}..{most}" if most is not None else f"an integer >= {low}"
        raise InvalidQueryError(f"{name} must be {bound}, got {given[:40]!r}")
    return value


def event_page(
    events: StoreEvents,
    experiment_id: str,
    trial_id: str,
    offset: int,
    limit: int,
    url: str,
    total: int | None = None,
) -> Iterator[bytes]:
    """The JSON of one page of events, in pieces (one per event), read from the store
    :data:`_READ_CHUNK` events at a time; ``total``: the trial's event count, if known."""
    if total is None:
        total = events.count(experiment_id, trial_id)
    end = min(offset + limit, total)
    following = f"{url}?offset={end}&limit={limit}" if end < total else None
    yield b'{"total":%d,"offset":%d,"limit":%d,"next":' % (total, offset, limit)
    yield bytes(to_json(following)) + b',"events":['
    first = True
    for start in range(offset, end, _READ_CHUNK):
        chunk = events.read(experiment_id, trial_id, start, min(_READ_CHUNK, end - start))
        for event in chunk:
            yield (b"" if first else b",") + event_json(event)
            first = False
        if not chunk:
            break
    yield b"]}"


def kept_while_sent(pieces: Iterator[bytes], keep: Callable[[bytes], object]) -> Iterator[bytes]:
    """``pieces`` as they come, then ``keep(all of them)`` once the last was sent (a page
    is at most :data:`MAX_EVENTS` events: a few megabytes)."""
    sent = []
    for piece in pieces:
        sent.append(piece)
        yield piece
    keep(b"".join(sent))


def event_json(event: TraceEvent) -> bytes:
    """One event as the API serves it: LM settings redacted, non-finite numbers as
    strings (JSON has no literal for them)."""
    return bytes(to_json(event_dict(event.to_dict()), inf_nan_mode="strings"))


def event_dict(event: dict[str, Any]) -> dict[str, Any]:
    if isinstance(event["payload"].get("settings"), dict):
        event["payload"]["settings"] = redact(event["payload"]["settings"])
    return event


def trial_dict(trial: dict[str, Any]) -> dict[str, Any]:
    """``trial`` (a Trial's dict) with the settings of its LM and LM calls redacted."""
    lm = trial["variables"]["lm"]
    if lm is not None:
        lm["settings"] = redact(lm["settings"])
    for event in trial["events"]:
        event_dict(event)
    return trial
