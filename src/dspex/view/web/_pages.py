"""The trial page, a page of events at a time, and where a long trial's pages are made.

A trial page shows :data:`EVENTS_PER_PAGE` events of the trial's timeline (filtered by
the query string) with links to the earlier and later ones; ``?event=evt_...`` opens the
page that holds that event. :func:`trial_pages` renders the asked page and a few around
it in one go (what covers the whole trial, such as the waterfall, once).

A trial of more than :data:`LONG_TRIAL` events is parsed to hundreds of megabytes (about
4 KB an event), and a process that has held that much keeps most of it from the system
afterwards. So the app does not build such a trial's timeline itself: a short-lived
worker process (:mod:`dspex.view.web._render_child`) reads the trial from the store,
renders the pages asked for and the next ones, hands back their HTML and exits; the
app keeps the pages (a few hundred KB each) in its cache::

    pages = PageRequest.from_query("/experiments/E/trials/T", [("offset", "400")])
    pages.offset, pages.key()
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from dspex.errors import DspexError, ExperimentNotFound, TrialNotFound
from dspex.ids import is_valid_id
from dspex.model import Experiment, Trial
from dspex.view.html import timeline_pages
from dspex.view.labels import trial_label
from dspex.view.timeline import Timeline

__all__ = [
    "EVENTS_PER_PAGE",
    "LONG_TRIAL",
    "PAGES_AHEAD",
    "PageRequest",
    "render_elsewhere",
    "trial_pages",
]

EVENTS_PER_PAGE = 400
"""Trial pages show this many events at a time; longer trials get earlier/later links."""

LONG_TRIAL = 20_000
"""Trials with more events than this are rendered by a worker process (see above)."""

PAGES_AHEAD = 3
"""Pages rendered after the one asked for (and one before), for the next clicks."""

CHILD_TIMEOUT = 600.0
"""Seconds a worker process may take before the request fails."""

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
        return cls(path, params, _int(given.get("offset"), 0), event, _filters(items))

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


def _int(value: str | None, default: int) -> int:
    try:
        return max(int(value), 0) if value is not None else default
    except ValueError:
        return default


class RenderFailed(DspexError):
    """The worker process that renders a long trial's pages failed."""


def render_elsewhere(
    store_url: str, experiment_id: str, trial_id: str, request: PageRequest, root: str
) -> tuple[int, dict[int, bytes]]:
    """:func:`trial_pages` (with :data:`PAGES_AHEAD` pages ahead) in a worker process
    that reads the trial from ``store_url`` and exits, so that its memory goes back to
    the system. The store URL (which may hold a password) goes through a pipe."""
    job = {
        "store": store_url,
        "experiment": experiment_id,
        "trial": trial_id,
        "request": request.to_json(),
        "root": root,
        "ahead": PAGES_AHEAD,
    }
    done = subprocess.run(
        [sys.executable, "-m", "dspex.view.web._render_child"],
        input=json.dumps(job).encode(),
        capture_output=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RenderFailed(
            f"rendering trial {trial_id} in a worker process failed (exit {done.returncode}): "
            + done.stderr.decode(errors="replace").strip()[-2000:]
        )
    answer = json.loads(done.stdout)
    if "missing" in answer:
        if answer["missing"] == "experiment":
            raise ExperimentNotFound(experiment_id, store=answer["store"])
        raise TrialNotFound(experiment_id, trial_id)
    pages = {int(o): html.encode() for o, html in answer["pages"].items()}
    return int(answer["offset"]), pages
