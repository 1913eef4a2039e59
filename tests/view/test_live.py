"""A run recording in another process, watched in Chromium: the page updates as trials land.

The writer (tests/view/live_writer.py) records into a file, SQLite or PostgreSQL store;
the UI reads the same store. Nothing reloads the page: it polls the progress endpoint
and swaps in the sections that changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

import dspex
from dspex import ResultStore
from dspex.view.web import create_app
from tests.store.conftest import postgres_database, postgres_schema_url  # noqa: F401
from tests.view.conftest import REPO, LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class Writer:
    """The writer process, driven line by line."""

    def __init__(self, url: str) -> None:
        src = str(Path(dspex.__file__).resolve().parents[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("DSPEX_")}
        env["PYTHONPATH"] = os.pathsep.join([src, str(REPO)])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.view.live_writer", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        ready = self._read()
        assert ready.startswith("ready exp_"), ready
        self.experiment_id = ready.split()[1]

    def _read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line, f"the writer stopped (exit {self.process.poll()})"
        return line

    def send(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture(params=["file", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    if request.param == "file":
        return f"file://{tmp_path / 'store'}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return postgres_schema_url(request.getfixturevalue("postgres_database"))


@pytest.fixture
def writer(store_url) -> Iterator[Writer]:
    writer = Writer(store_url)
    try:
        yield writer
    finally:
        writer.close()


def _rows(p) -> int:
    return p.locator("table.trial-table tbody tr").count()


def test_the_page_updates_as_trials_land_in_another_process(store_url, writer, page, artifacts):
    store = ResultStore.open(store_url)
    p = page.page
    with LiveServer(create_app(store, live_every=0.25)) as live:
        p.goto(live.url + "/")
        row = p.locator(f"tr[data-experiment={writer.experiment_id}]")
        assert "running" in row.locator(".badge.running").inner_text()

        p.goto(f"{live.url}/experiments/{writer.experiment_id}")
        assert _rows(p) == 0 and "Running" in p.locator(".dspex-progress").inner_text()
        p.evaluate("window.__sameDocument = true")  # gone if the page reloaded

        rows = p.locator("table.trial-table tbody tr")
        assert writer.send("trial") == "wrote 1"
        expect(rows).to_have_count(1, timeout=15_000)
        assert writer.send("trial") == "wrote 2"
        expect(rows).to_have_count(2, timeout=15_000)
        progress = p.locator(".dspex-progress").inner_text()
        assert "2 trials recorded" in progress and "0.8333" in progress  # best so far
        p.screenshot(path=str(artifacts / "web-live-running.png"), full_page=True)

        assert writer.send("finish") == "finished"
        expect(p.locator(".dspex-experiment header .badge")).to_have_text(
            "completed", timeout=15_000
        )
        assert p.evaluate("window.__sameDocument") is True
        assert "Outcome" in p.locator(".dspex-progress h3").inner_text()
        assert p.locator(".dspex-experiment[data-live-url]").count() == 0  # polling stopped

        p.goto(live.url + "/")
        assert p.locator(f"tr[data-experiment={writer.experiment_id}] .badge.running").count() == 0
    page.assert_no_script_ran()


def test_the_list_marks_and_refreshes_running_experiments(store_url, writer, page):
    p = page.page
    with LiveServer(create_app(ResultStore.open(store_url), live_every=0.25)) as live:
        p.goto(live.url + "/")
        row = f"tr[data-experiment={writer.experiment_id}]"
        assert p.locator(f"{row} td.num").nth(1).inner_text() == "0"
        assert "1 running" in p.locator("main").inner_text()
        writer.send("trial")
        expect(p.locator(f"{row} td.num").nth(1)).to_have_text("1", timeout=15_000)
        writer.send("finish")
        expect(p.locator(f"{row} .badge.running")).to_have_count(0, timeout=15_000)
