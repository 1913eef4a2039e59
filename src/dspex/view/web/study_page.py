"""The web UI's study pages: the list of studies, one study, and their JSON.

Routes (all GET)::

    /studies                          the studies in the store, most recently updated first
    /studies/{name}                   one study (reloads itself while the study runs)
    /api/studies                      summaries as JSON
    /api/studies/{name}               the study's record as JSON
    /api/studies/{name}/progress      revision, status, live, cells and the count of cells
                                      in each status (polled by the page)

A study's record is small and changes while it runs: it is read from the store on every
request, never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dspex.errors import StudyNotFound, ValidationError
from dspex.model.study import CellStatus, StudyRecord, StudyStatus
from dspex.store import ResultStore
from dspex.view.study import study_html

__all__ = ["study_routes"]


Page = Callable[[Request, str, Markup, list[tuple[str, str]]], Response]


def study_routes(store: ResultStore, page: Page, templates: Any, live_every: float) -> list[Route]:
    """The routes above, rendering into the app's page frame ``page``."""

    def record(request: Request) -> StudyRecord:
        name = request.path_params["name"]
        try:
            return store.get_study(name)
        except ValidationError as exc:  # a malformed name names no study
            raise StudyNotFound(name) from exc

    def index(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        content = (
            templates()
            .get_template("studies.html")
            .render(studies=store.query_studies(limit=200), store_url=store.url, root=root)
        )
        return page(request, "Studies", Markup(content), [("Studies", f"{root}/studies")])

    def study(request: Request) -> Response:
        found = record(request)
        root = request.scope.get("root_path", "")
        content = study_html(
            found,
            experiment_url=lambda experiment_id: f"{root}/experiments/{experiment_id}",
            live_url=f"{root}/api/studies/{found.name}/progress",
            live_every=live_every,
        )
        crumbs = [("Studies", f"{root}/studies"), (found.name, request.url.path)]
        return page(request, f"Study {found.name}", content, crumbs)

    def api_studies(request: Request) -> Response:
        return _json({"studies": [s.to_dict() for s in store.query_studies(limit=1000)]})

    def api_study(request: Request) -> Response:
        return _json(record(request).to_dict())

    def api_progress(request: Request) -> Response:
        found = record(request)
        counts = {status.value: 0 for status in CellStatus}
        for cell in found.cells:
            counts[cell.status.value] += 1
        return _json(
            {
                "revision": found.revision,
                "status": found.status.value,
                "live": found.status is StudyStatus.RUNNING,
                "cells": len(found.cells),
                **counts,
            }
        )

    return [
        Route("/studies", index),
        Route("/studies/{name}", study),
        Route("/api/studies", api_studies),
        Route("/api/studies/{name}", api_study),
        Route("/api/studies/{name}/progress", api_progress),
    ]


def _json(data: Any) -> Response:
    return Response(to_json(data, inf_nan_mode="strings"), media_type="application/json")
