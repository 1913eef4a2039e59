"""On a phone (390 px wide) tables scroll inside their own container; the page does not
widen. Debian's Chromium through Playwright; screenshots land in test-artifacts/."""

from __future__ import annotations

import pytest

from dspex import ResultStore
from dspex.view.web import create_app
from tests.view.conftest import LiveServer
from tests.view.fixtures import large_experiment, simba_experiment

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server():
    store = ResultStore.open("memory://phone")
    for experiment in (simba_experiment(), large_experiment()):
        store.archive_experiment(experiment)
    with LiveServer(create_app(store)) as live:
        yield live


@pytest.fixture
def phone(chromium):
    context = chromium.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def _scrolls_inside(page, table: str) -> bool:
    return page.evaluate(
        """(selector) => { const box = document.querySelector(selector).closest('.table-scroll');
             return box !== null && box.scrollWidth > box.clientWidth; }""",
        table,
    )


def test_the_experiment_list_scrolls_inside_its_container(server, phone, artifacts):
    phone.goto(server.url + "/")
    assert _page_width(phone) <= PHONE["width"]
    assert _scrolls_inside(phone, "table.experiments")
    phone.screenshot(path=str(artifacts / "phone-list.png"), full_page=True)


def test_the_trial_table_scrolls_inside_its_container(server, phone, simba, artifacts):
    phone.goto(f"{server.url}/experiments/{simba.id}")
    assert _page_width(phone) <= PHONE["width"]
    assert _scrolls_inside(phone, "table.trial-table")
    phone.screenshot(path=str(artifacts / "phone-experiment.png"), full_page=True)


def test_the_list_filter_puts_only_given_fields_in_the_url(server, chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        page.fill("input[name=optimizer]", "simba")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**/?optimizer=simba")
        assert page.url.endswith("/?optimizer=simba")
        assert page.locator("table.experiments tbody tr").count() == 1  # SIMBA, any case
    finally:
        context.close()
