"""The Starlette application: experiment list, experiment and trial pages, JSON API.

Routes (all GET)::

    /                                         experiments, filtered by the query string
    /experiments/{experiment_id}              the experiment view
    /experiments/{experiment_id}/trials/{id}  the trial view (events paginated)
    /compare?a=EXP[:TRIAL]&b=EXP[:TRIAL]      two trials or experiments side by side
    /api/experiments                          summaries as JSON (same filters)
    /api/experiments/{experiment_id}         the experiment without events (each trial's
                                              event_count and event_summary), as JSON
    /api/experiments/{experiment_id}/progress  trials done, best per scope, time (polled
                                              by the page of a running experiment)
    /api/experiments/{experiment_id}/trials/{id}  one trial without its events (with
                                              event_count and events_url), as JSON
    /api/experiments/{experiment_id}/trials/{id}/events?offset=&limit=  its events, paged
                                              (see dspex.view.web.trial_api)
    /studies, /studies/{name}, /api/studies...  studies (see dspex.view.web.study_page)

Unknown or malformed ids answer 404, invalid filters 400, both with the message.
Finished experiments are cached (records never change once archived) within
``ui.cache_mb`` megabytes (see dspex.view.web.cache); a running one is read again when
the store's index says a trial landed.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from pydantic_core import to_json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dspex.errors import (
    ExperimentNotFound,
    InvalidIdError,
    InvalidQueryError,
    StudyNotFound,
    TrialNotFound,
)
from dspex.formatting import format_score
from dspex.ids import is_valid_id
from dspex.model import Experiment, ExperimentStatus, Trial
from dspex.redact import redact
from dspex.store import ResultStore
from dspex.store.query import FILTERS
from dspex.view.html import experiment_html
from dspex.view.progress import progress_of
from dspex.view.web._pages import (
    EVENTS_PER_PAGE,
    LONG_TRIAL,
    PageRequest,
    page_holding,
    trial_pages,
    window_page,
)
from dspex.view.web.access import check_token
from dspex.view.web.cache import DEFAULT_BUDGET, ExperimentCache, release_memory
from dspex.view.web.compare_page import compare_context, compare_url, parse_ref
from dspex.view.web.filters import DATE_FILTERS, active_filters, date_part, list_filters
from dspex.view.web.study_page import study_routes
from dspex.view.web.trial_api import (
    StoreEvents,
    event_page,
    kept_while_sent,
    page_bounds,
    trial_dict,
)
from dspex.view.window import around_trial, check_offset, holds_long_trial, read_window

__all__ = ["EVENTS_PER_PAGE", "create_app", "page_html"]

TOKEN_COOKIE = "dspex_token"
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@cache
def _templates() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("dspex.view.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )
    env.globals["score"] = format_score
    return env


def _compile_templates() -> None:
    """Compile every page template now (once per process), not in the first request that
    needs it: the trial page's templates alone take tens of milliseconds."""
    from dspex.view import html

    # and the templates they import or include at render time (~90 ms on the first view)
    for name in ("trial.html", "experiment.html", "_macros.html", "_verdict.html"):
        html._environment().get_template(name)
    for name in ("base.html", "list.html", "compare_page.html", "studies.html"):
        _templates().get_template(name)
    # what else the first page would load: the CSS and script every view inlines, and
    # the C library release_memory asks (find_library runs ldconfig in a subprocess)
    for name in ("view.css", "view.js"):
        html._static(name)
    release_memory()


def page_html(root: str, title: str, content: object, crumbs: list[tuple[str, str]]) -> str:
    """The whole HTML page around ``content`` (a view's Markup)."""
    template = _templates().get_template("base.html")
    return str(template.render(title=title, content=content, crumbs=crumbs, root=root))


def _page(
    request: Request, title: str, content: Markup, crumbs: list[tuple[str, str]], status: int = 200
) -> HTMLResponse:
    html = page_html(request.scope.get("root_path", ""), title, content, crumbs)
    return HTMLResponse(html, status_code=status)


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    content = Markup('<h2>{}</h2><p class="error" role="alert">{}</p>').format(
        {400: "Bad request", 401: "Unauthorized", 404: "Not found"}.get(status, "Error"), message
    )
    return _page(request, "Error", content, [], status=status)


class _Handlers:
    """The route endpoints, bound to one store (sync: Starlette runs them in a thread)."""

    def __init__(
        self, store: ResultStore, live_every: float = 2.0, cache_bytes: int = DEFAULT_BUDGET
    ) -> None:
        self.store = store
        self.cache = ExperimentCache(store, cache_bytes)
        self.events = StoreEvents(store, self.cache)
        self.live_every = live_every
        # Longer trials are read a page of events at a time (see _window_page).
        self.long_trial = LONG_TRIAL

    def _trial_url(self, request: Request) -> Callable[[Trial], str]:
        root = request.scope.get("root_path", "")
        return lambda t: f"{root}/experiments/{t.experiment_id}/trials/{t.id}"

    def index(self, request: Request) -> Response:
        given = request.query_params.multi_items()
        if any(value == "" for _, value in given):  # a form's empty fields: not filters
            kept = urlencode([(k, v) for k, v in given if v != ""])
            return RedirectResponse(request.url.path + ("?" + kept if kept else ""), 303)
        filters = list_filters(request)
        values = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in filters.items()}
        chosen = filters.get("status", [])
        context: dict[str, Any] = {
            "help": FILTERS,
            "values": values,
            "statuses": [s.value for s in ExperimentStatus],
            "chosen_statuses": chosen if isinstance(chosen, list) else [chosen],
            "orders": [("created", "newest first"), ("score", "best score first")],
            "dates": {k: date_part(values.get(k, "")) for k in DATE_FILTERS},
            "active": active_filters(filters),
            "store_url": self.store.url,
            "root": request.scope.get("root_path", ""),
            "experiments": None,
            "error": None,
            "total": 0,
            "everything": 0,
            "running": 0,
            "live_every": int(self.live_every * 1000),
            "next_url": None,
        }
        status = 200
        try:
            page = self.store.query_experiments(filters)
            context["total"] = self.store.count_experiments(filters)
            context["everything"] = self.store.count_experiments()
        except InvalidQueryError as exc:
            context["error"], status = str(exc), 400
        else:
            context["experiments"] = list(page)
            context["running"] = sum(1 for s in page if s.status is ExperimentStatus.RUNNING)
            if page.next_cursor:
                following = {k: v for k, v in filters.items() if k != "offset"}
                following["cursor"] = page.next_cursor
                context["next_url"] = "?" + urlencode(following, doseq=True)
        content = Markup(_templates().get_template("list.html").render(**context))
        return _page(request, "Experiments", content, [], status=status)

    def experiment(self, request: Request) -> Response:
        root = request.scope.get("root_path", "")
        known = self._known(request, ("page", request.path_params["experiment_id"]), (root,))
        if known is not None:
            return HTMLResponse(known)
        version, experiment = self.cache.versioned(
            request.path_params["experiment_id"], events=False
        )

        def build() -> bytes:
            content = experiment_html(
                experiment,
                trial_url=self._trial_url(request),
                compare_url=lambda a, b: compare_url(root, a, b),
                live_url=f"{root}/api/experiments/{experiment.id}/progress",
                live_every=self.live_every,
            )
            crumbs = [(experiment.name, request.url.path)]
            return bytes(_page(request, experiment.name, content, crumbs).body)

        key = ("page", experiment.id, version, root)
        body = self.cache.rendered(key, build)
        self._release(experiment.id)
        return HTMLResponse(body)

    def _known(
        self, request: Request, before: tuple[str, ...], after: tuple[str, ...]
    ) -> bytes | None:
        """What was rendered for ``(*before, version, *after)`` of a finished experiment
        read before, without reading it again (None: render it)."""
        version = self.cache.known_version(request.path_params["experiment_id"])
        if version is None:
            return None
        found = self.cache.entries.get(("rendered", *before, version, *after))
        return found if isinstance(found, bytes) else None

    def _release(self, experiment_id: str) -> None:
        if not self.cache.kept_experiment(experiment_id):
            release_memory()  # too large to keep: give its memory back now

    def compare(self, request: Request) -> Response:
        root = request.scope.get("root_path", "")
        a = parse_ref(request.query_params.get("a"), "a")
        b = parse_ref(request.query_params.get("b"), "b")
        context = compare_context(
            self.store,
            lambda experiment_id: self.cache.versioned(experiment_id, events=False)[1],
            a,
            b,
            root=root,
            load=self._compared,
        )
        content = Markup(_templates().get_template("compare_page.html").render(**context))
        return _page(request, context["title"], content, [("Compare", f"{root}/compare")])

    def _compared(self, trial: Trial) -> Trial:
        """A trial of the compare page with its events, unless it is too long to read
        whole (then its header: the page says what it did not compare)."""
        if trial.events or self.events.count(trial.experiment_id, trial.id) > self.long_trial:
            return trial
        return self.store.get_trial(trial.experiment_id, trial.id)

    def trial(self, request: Request) -> Response:
        experiment_id = request.path_params["experiment_id"]
        root = request.scope.get("root_path", "")
        asked = PageRequest.from_query(request.url.path, request.query_params.multi_items())
        ref = request.path_params["trial_id"]
        if not is_valid_id(ref, "trl"):  # a row or candidate number: its id, from the headers
            ref = self.cache.versioned(experiment_id, events=False)[1].trial(ref).id
        count = self.events.count(experiment_id, ref)
        if count > self.long_trial:
            return HTMLResponse(self._window_page(experiment_id, ref, count, asked, root))
        known = self.cache.known_version(experiment_id)
        if known is not None:
            body = self._cached_page(("trial", experiment_id, known, ref, root), asked)
            if body is not None:
                return HTMLResponse(body)
        version, experiment = self.cache.versioned(experiment_id, events=False)
        if holds_long_trial(experiment, self.long_trial):  # the other trials' ends only
            experiment = around_trial(self.store, experiment, ref)
        else:
            version, experiment = self.cache.versioned(experiment_id)
        trial = experiment.trial(ref)
        key = ("trial", experiment.id, version, trial.id, root)
        body = self._cached_page(key, asked)
        if body is None:
            timeline = self.cache.timeline(experiment, trial)
            body = self._keep_pages(
                key,
                asked,
                trial_pages(experiment, trial, timeline, asked, root=root, wrap=self._wrap(root)),
            )
            if not self.cache.cached_timeline(experiment, trial):
                release_memory()  # a trial too large to keep: give its memory back now
        self._release(experiment.id)
        return HTMLResponse(body)

    def _window_page(
        self, experiment_id: str, trial_id: str, count: int, asked: PageRequest, root: str
    ) -> bytes:
        """A page of a trial too long to read whole: the experiment's trials without their
        events (kept), the trial's event count and the page's events only, from the store."""
        # the experiment's version too: a sealed trial's header changes (its score, its
        # status) while its count may not
        version, experiment = self.cache.versioned(experiment_id, events=False)
        key = ("window", experiment_id, version, trial_id, str(count), root)
        body = self._cached_page(key, asked)
        if body is not None:
            return body
        offset = asked.offset
        if asked.event is not None:  # read a chunk at a time until it turns up
            found = page_holding(
                lambda start, limit: self.events.read(experiment_id, trial_id, start, limit),
                count,
                asked.event,
            )
            offset = found or 0
        check_offset(offset, count)
        experiment, trial, window = read_window(
            self.store,
            experiment_id,
            trial_id,
            offset,
            EVENTS_PER_PAGE,
            experiment=experiment,
            total=count,
        )
        page = window_page(experiment, trial, window, asked, root=root, wrap=self._wrap(root))
        return self._keep_pages(key, asked, (offset, {offset: page}))

    def _wrap(self, root: str) -> Callable[[str, Markup, list[tuple[str, str]]], bytes]:
        return lambda title, content, crumbs: page_html(root, title, content, crumbs).encode()

    def _cached_page(self, key: tuple[str, ...], asked: PageRequest) -> bytes | None:
        found = self.cache.entries.get((*key, *asked.key()))
        if isinstance(found, int):  # ?event=: the offset of the page that holds it
            found = self.cache.entries.get((*key, *asked.key(found)))
        return found if isinstance(found, bytes) else None

    def _keep_pages(
        self, key: tuple[str, ...], asked: PageRequest, rendered: tuple[int, dict[int, bytes]]
    ) -> bytes:
        offset, pages = rendered
        for start, page in pages.items():
            self.cache.entries.put((*key, *asked.key(start)), page, sys.getsizeof(page))
        if asked.event is not None:
            self.cache.entries.put((*key, *asked.key()), offset, sys.getsizeof(offset))
        return pages[offset]

    def api_experiments(self, request: Request) -> Response:
        filters = list_filters(request)
        page = self.store.query_experiments(filters)
        return _json({"experiments": [s.to_dict() for s in page], "next_cursor": page.next_cursor})

    def api_experiment(self, request: Request) -> Response:
        known = self._known(request, ("api", request.path_params["experiment_id"]), ())
        if known is not None:
            return Response(known, media_type="application/json")
        version, experiment = self.cache.versioned(
            request.path_params["experiment_id"], events=False
        )
        body = self.cache.rendered(
            ("api", experiment.id, version), lambda: _without_events(experiment)
        )
        self._release(experiment.id)
        return Response(body, media_type="application/json")

    def api_progress(self, request: Request) -> Response:
        # the trials' headers are enough (scores, scopes from their summaries)
        _, experiment = self.cache.versioned(request.path_params["experiment_id"], events=False)
        return _json(progress_of(experiment).to_dict(self._trial_url(request)))

    def _trial_id(self, request: Request) -> tuple[str, str]:
        experiment_id, ref = request.path_params["experiment_id"], request.path_params["trial_id"]
        if not is_valid_id(ref, "trl"):  # a row or candidate number, as everywhere
            ref = self.cache.versioned(experiment_id, events=False)[1].trial(ref).id
        return experiment_id, ref

    def api_trial(self, request: Request) -> Response:
        experiment_id, trial_id = self._trial_id(request)
        data = trial_dict(self.events.header(experiment_id, trial_id).to_dict())
        data["event_count"] = self.events.count(experiment_id, trial_id)
        root = request.scope.get("root_path", "")
        data["events_url"] = f"{root}/api/experiments/{experiment_id}/trials/{trial_id}/events"
        return _json(data)

    def api_trial_events(self, request: Request) -> Response:
        offset, limit = page_bounds(
            request.query_params.get("offset"), request.query_params.get("limit")
        )
        experiment_id, trial_id = self._trial_id(request)
        total = self.events.count(experiment_id, trial_id)  # 404 before the first byte
        root = request.scope.get("root_path", "")
        key = ("events", experiment_id, trial_id, str(total), str(offset), str(limit), root)
        cached = self.cache.entries.get(key)
        if isinstance(cached, bytes):
            return Response(cached, media_type="application/json")
        url = f"{root}/api/experiments/{experiment_id}/trials/{trial_id}/events"
        pieces = event_page(self.events, experiment_id, trial_id, offset, limit, url, total)

        def keep(body: bytes) -> None:
            self.cache.entries.put(key, body, sys.getsizeof(body))

        return StreamingResponse(kept_while_sent(pieces, keep), media_type="application/json")


def _json(data: Any) -> Response:
    """A JSON response. JSON has no literal for NaN or infinity: a non-finite score or
    metric is sent as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``."""
    return Response(to_json(data, inf_nan_mode="strings"), media_type="application/json")


def _without_events(experiment: Experiment) -> bytes:
    """The record as the API serves it: each trial's events left out (``event_count``
    instead), no secrets in its settings, non-finite numbers as strings (see :func:`_json`)."""
    summaries = [t.summarized_events() for t in experiment.trials]
    bare = experiment.model_copy(
        update={"trials": tuple(t.model_copy(update={"events": ()}) for t in experiment.trials)}
    )
    data = bare.to_dict()
    data["environment"]["config"] = redact(data["environment"]["config"])
    if data["optimizer"] is not None:
        data["optimizer"]["settings"] = redact(data["optimizer"]["settings"])
    for trial, summary in zip(data["trials"], summaries, strict=True):
        trial_dict(trial)
        trial["event_count"] = summary.events
        trial["event_summary"] = summary.to_dict()
    return bytes(to_json(data, inf_nan_mode="strings"))


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(request.scope.get("root_path", "") + "/api/")


def _error_response(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    return _error_page(request, status, message)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def create_app(
    store: ResultStore | None = None,
    *,
    token: str | None = None,
    allowed_hosts: tuple[str, ...] | None = None,
    live_every: float = 2.0,
    cache_mb: int | None = None,
) -> Starlette:
    """The web app over ``store`` (default: the configured store).

    ``token``, when set, is required on every request. Without a token, requests must
    name a loopback host (``allowed_hosts``, by default 127.0.0.1, localhost, [::1]) in
    their Host header, so a web page cannot reach the UI through DNS rebinding. Pages of
    running experiments check for new trials every ``live_every`` seconds. What the app
    keeps between requests stays within ``cache_mb`` megabytes (default: ``ui.cache_mb``).
    """
    check_token(token)
    store = store or ResultStore.default()
    if cache_mb is None:
        from dspex.config import get_settings

        cache_mb = get_settings().ui.cache_mb
    handlers = _Handlers(store, live_every, cache_mb * 2**20)
    _compile_templates()

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error_response(request, 404, str(exc))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return _error_response(request, 400, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        return _error_response(request, status, str(getattr(exc, "detail", exc)))

    app = Starlette(
        routes=[
            Route("/", handlers.index),
            Route("/experiments/{experiment_id}", handlers.experiment),
            Route("/experiments/{experiment_id}/trials/{trial_id}", handlers.trial),
            Route("/compare", handlers.compare),
            Route("/api/experiments", handlers.api_experiments),
            Route("/api/experiments/{experiment_id}", handlers.api_experiment),
            Route("/api/experiments/{experiment_id}/progress", handlers.api_progress),
            Route("/api/experiments/{experiment_id}/trials/{trial_id}", handlers.api_trial),
            Route(
                "/api/experiments/{experiment_id}/trials/{trial_id}/events",
                handlers.api_trial_events,
            ),
            *study_routes(store, _page, _templates, live_every),
        ],
        exception_handlers={
            ExperimentNotFound: not_found,
            TrialNotFound: not_found,
            StudyNotFound: not_found,
            InvalidIdError: not_found,  # a malformed id names nothing that exists
            InvalidQueryError: bad_request,
            404: http_error,
            405: http_error,
        },
    )
    hosts = allowed_hosts if allowed_hosts is not None else (() if token else LOOPBACK_HOSTS)
    app.add_middleware(_Guard, token=token, allowed_hosts=hosts)
    return app


class _Guard:
    """Security headers, Server-Timing, and the access token when one is configured."""

    def __init__(
        self, app: ASGIApp, token: str | None = None, allowed_hosts: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.allowed_hosts and _host_name(request) not in self.allowed_hosts:
            response = _error_response(
                request,
                400,
                f"unexpected Host {request.headers.get('host', '')!r}: this dspex UI answers "
                f"only to {', '.join(self.allowed_hosts)}; configure ui.token to serve "
                "other names",
            )
            await response(scope, receive, send)
            return
        set_cookie = False
        if self.token:
            given = request.query_params.get("token")
            if given is not None and _same(given, self.token):
                set_cookie = True
            elif not self._authorized(request):
                response = _error_response(
                    request,
                    401,
                    "this dspex UI requires its access token: open it once with ?token=<token> "
                    "or send 'Authorization: Bearer <token>'",
                )
                await response(scope, receive, send)
                return
        if set_cookie and request.method == "GET" and not _is_api(request):
            # Drop the token from the address bar (and from history) once the cookie is set.
            clean = request.url.remove_query_params("token")
            redirect = RedirectResponse(str(clean), status_code=303)
            redirect.set_cookie(TOKEN_COOKIE, self.token or "", httponly=True, samesite="strict")
            await redirect(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                elapsed = (time.perf_counter() - started) * 1000
                headers += [
                    (b"server-timing", f"app;dur={elapsed:.1f}".encode()),
                    (b"content-security-policy", _CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _authorized(self, request: Request) -> bool:
        assert self.token is not None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return _same(header[7:].strip(), self.token)
        cookie = request.cookies.get(TOKEN_COOKIE)
        return cookie is not None and _same(cookie, self.token)


def _same(given: str, expected: str) -> bool:
    # compare_digest refuses non-ASCII str; compare bytes so any token just fails to match.
    return secrets.compare_digest(given.encode(), expected.encode())


def _host_name(request: Request) -> str:
    host = request.headers.get("host", "")
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if ":" in host else host
