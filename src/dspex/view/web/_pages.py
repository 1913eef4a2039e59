"""The trial page, a page of events at a time, and a long trial's pages read alone.

A trial page shows :data:`EVENTS_PER_PAGE` events of the trial's timeline (filtered by
the query string) with links to the earlier and later ones; ``?event=evt_...`` opens the
page that holds that event. :func:`trial_pages` renders the asked page and a few around
it in one go (what covers the whole trial, such as the waterfall, once).

A trial of more than :data:`LONG_TRIAL` events parses to hundreds of megabytes (about
4 KB an event), so the app never reads one whole: :func:`window_page` reads the
experiment's trials without their events (their stored summaries), the trial's event
count and the one page of events asked for (:mod:`dspex.view.window`), and the page says
what it covers. Its filters apply to that page's events::

    pages = PageRequest.from_query("/experiments/E/trials/T", [("offset", "400")])
    pages.offset, pages.key()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from dspex.errors import InvalidQueryError
from dspex.ids import is_valid_id
from dspex.model import Experiment, TraceEvent, Trial
from dspex.view.html import timeline_pages, window_html
from dspex.view.labels import trial_label
from dspex.view.timeline import Timeline, build_timeline
from dspex.view.window import LONG_TRIAL, EventWindow

__all__ = [
    "EVENTS_PER_PAGE",
    "LONG_TRIAL",
    "PageRequest",
    "page_holding",
    "trial_pages",
    "window_page",
]

EVENTS_PER_PAGE = 400
"""Trial pages show this many events at a time; longer trials get earlier/later links."""

SCAN_CHUNK = 2_000
"""Events read at a time when looking for the page of a long trial that holds an event."""

Wrap = Callable[[str, Markup, list[tuple[str, str]]], bytes]
"""``wrap(title, content, crumbs)``: the whole HTML page around a view."""


@dataclass(frozen=True)
class PageRequest:
    """What a trial page request asks for: its filters, and a page by offset or event."""

    path: str
    params: tuple[tuple[str, str], ...] = ()
    """The query string without offset, event and token (the filters)."""
    offset: int = 0
    event: str | None = None
    filters: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_query(cls, path: str, items: Sequence[tuple[str, str]]) -> PageRequest:
        given = dict(items)
        params = tuple((k, v) for k, v in items if k not in ("offset", "token", "event"))
        event = given.get("event") if "offset" not in given else None
        if event is not None and not is_valid_id(event, "evt"):
            event = None  # names no event: the first page (and no worker run for it)
        return cls(path, params, _offset(given.get("offset")), event, _filters(items))

    def key(self, offset: int | None = None) -> tuple[str, ...]:
        """The cache key of one page of this view (``offset``: of another page of it)."""
        if offset is None and self.event is not None:
            return ("event", repr(self.params), self.event)
        return ("page", repr(self.params), str(self.offset if offset is None else offset))

    def page_url(self, start: int) -> str:
        return "?" + urlencode([*self.params, ("offset", str(start))])

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "params": self.params,
            "offset": self.offset,
            "event": self.event,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageRequest:
        params = tuple((str(k), str(v)) for k, v in data["params"])
        return cls(data["path"], params, int(data["offset"]), data["event"], _filters(params))


def trial_pages(
    experiment: Experiment,
    trial: Trial,
    timeline: Timeline,
    request: PageRequest,
    *,
    root: str,
    wrap: Wrap,
    ahead: int = 0,
) -> tuple[int, dict[int, bytes]]:
    """``(offset, pages)``: the offset of the page asked for, and that page (with up to
    ``ahead`` later ones and, then, one earlier) as whole HTML pages by offset."""
    if request.filters:
        timeline = timeline.filter(**request.filters)
    offset = request.offset
    if request.event is not None:
        offset = _page_of(timeline, request.event)
    total = timeline.event_count
    offset = max(0, min(offset, max(total - 1, 0)))
    offsets = [offset]
    if ahead:
        after = range(offset + EVENTS_PER_PAGE, total, EVENTS_PER_PAGE)
        offsets += list(after)[:ahead]
        if offset >= EVENTS_PER_PAGE:
            offsets.append(offset - EVENTS_PER_PAGE)

    def trial_url(t: Trial) -> str:
        return f"{root}/experiments/{t.experiment_id}/trials/{t.id}"

    contents = timeline_pages(
        timeline,
        offsets,
        limit=EVENTS_PER_PAGE,
        trial_url=trial_url,
        page_url=request.page_url,
        experiment=experiment,
    )
    crumbs = [
        (experiment.name, f"{root}/experiments/{experiment.id}"),
        (trial_label(trial), request.path),
    ]
    title = f"{trial_label(trial)} · {experiment.name}"
    return offset, {o: wrap(title, content, crumbs) for o, content in contents.items()}


def _page_of(timeline: Timeline, event_id: str) -> int:
    """The offset of the page of ``timeline`` that shows ``event_id`` (0 if none does)."""
    for position, entry in enumerate(timeline.entries):
        if entry.event.id == event_id:
            return position // EVENTS_PER_PAGE * EVENTS_PER_PAGE
    return 0


def _filters(items: Sequence[tuple[str, str]]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for param, key in (("source", "sources"), ("worker", "workers"), ("module", "modules")):
        values = [v for k, v in items if k == param]
        if values:
            filters[key] = values
    text = dict(items).get("q")
    if text:
        filters["text"] = text
    return filters


def _offset(value: str | None) -> int:
    """The ``offset`` parameter: an integer >= 0 (:class:`InvalidQueryError` otherwise)."""
    if value is None:
        return 0
    try:
        offset = int(value)
    except ValueError:
        offset = -1
    if offset < 0:
        raise InvalidQueryError(f"offset must be an integer >= 0, got {value[:40]!r}")
    return offset


def window_page(
    experiment: Experiment,
    trial: Trial,
    window: EventWindow,
    request: PageRequest,
    *,
    root: str,
    wrap: Wrap,
) -> bytes:
    """The whole HTML page of one window of a long trial (``trial`` holds its events),
    filtered by ``request``'s filters."""
    timeline = replace(build_timeline(trial, experiment), window=window)
    if request.filters:
        timeline = timeline.filter(**request.filters)

    def trial_url(t: Trial) -> str:
        return f"{root}/experiments/{t.experiment_id}/trials/{t.id}"

    content = window_html(
        timeline,
        limit=EVENTS_PER_PAGE,
        trial_url=trial_url,
        page_url=request.page_url,
        experiment=experiment,
        filtered=bool(request.filters),
    )
    crumbs = [
        (experiment.name, f"{root}/experiments/{experiment.id}"),
        (trial_label(trial), request.path),
    ]
    return wrap(f"{trial_label(trial)} · {experiment.name}", content, crumbs)


def page_holding(
    read: Callable[[int, int], list[TraceEvent]], total: int, event_id: str
) -> int | None:
    """The offset of the page of a long trial that holds ``event_id`` (None: no event of
    it has that id), reading its events :data:`SCAN_CHUNK` at a time with
    ``read(offset, limit)``: never more than a chunk of them parsed at once."""
    for start in range(0, total, SCAN_CHUNK):
        chunk = read(start, SCAN_CHUNK)
        for position, event in enumerate(chunk, start):
            if event.id == event_id:
                return position // EVENTS_PER_PAGE * EVENTS_PER_PAGE
        if not chunk:
            break
    return None
