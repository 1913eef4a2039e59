"""Fixtures for the viewer tests: recorded experiments, stores, a live server, Chromium."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dspex import Experiment, ResultStore
from tests.view.fixtures import fixture_files, load, simba_experiment

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "view"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(params=fixture_files(), ids=lambda p: p.stem)
def recorded_file(request: pytest.FixtureRequest) -> Path:
    """Each experiment file under tests/view/data (a recorded run can be dropped in there)."""
    return request.param


@pytest.fixture
def recorded(recorded_file: Path) -> Experiment:
    return load(recorded_file)


@pytest.fixture(scope="session")
def simba() -> Experiment:
    return simba_experiment()


@pytest.fixture
def store(simba: Experiment) -> ResultStore:
    store = ResultStore.open("memory://")
    store.archive_experiment(simba)
    return store


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def make_client(app: Any, **kwargs: Any) -> Any:
    """Starlette's TestClient (imported here: with anyio 4.16, importing it warns about the
    deprecated anyio.abc.BlockingPortal alias, which starlette 0.52 still names)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The anyio.abc.BlockingPortal alias", category=DeprecationWarning
        )
        from starlette.testclient import TestClient
    return TestClient(app, **{"base_url": "http://127.0.0.1", **kwargs})


class LiveServer:
    """A real uvicorn server on a free port, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 20 s")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page that records any dialog or marker a script injection would set off."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # Any injected script would call alert(); count calls even where dialogs are off.
        page.add_init_script("window.__xss = 0; window.alert = function () { window.__xss += 1; };")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_no_script_ran(self) -> None:
        assert self.page.evaluate("window.__xss") == 0
        assert self.dialogs == []
        assert self.errors == []


@pytest.fixture
def page(chromium: Any) -> Iterator[Watched]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield Watched(context.new_page())
    finally:
        context.close()
