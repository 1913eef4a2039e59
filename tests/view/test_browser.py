"""The web UI in Chromium: a real uvicorn server, clicked through with Playwright."""

from __future__ import annotations

import pytest

from dspex import ResultStore
from dspex.view.web import create_app
from tests.view.conftest import LiveServer
from tests.view.fixtures import XSS, large_experiment

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    from tests.view.fixtures import simba_experiment

    store = ResultStore.open("memory://")
    store.archive_experiment(simba_experiment())
    store.archive_experiment(large_experiment())
    with LiveServer(create_app(store)) as live:
        yield live


def _visible_entries(page, source):
    return page.locator(f".dspex-entry[data-source={source}]:visible").count()


def test_list_experiment_and_trial_pages(server, page, simba, artifacts):
    p = page.page
    p.goto(server.url + "/")
    assert p.locator("table.experiments tbody tr").count() == 2
    p.screenshot(path=str(artifacts / "web-list.png"), full_page=True)

    p.get_by_role("link", name=simba.name).click()
    p.wait_for_url(f"**/experiments/{simba.id}")
    assert p.locator("svg circle").count() == len(simba.trials)
    p.screenshot(path=str(artifacts / "web-experiment.png"), full_page=True)

    # Sorting the trial table by score (JS): ascending, then descending.
    header = p.locator("table.trial-table th", has_text="score")
    header.click()
    first = p.locator("table.trial-table tbody tr").first.get_attribute("data-trial")
    assert first in {t.id for t in simba.trials if t.score == min(x.score for x in simba.trials)}
    header.click()
    assert p.locator("table.trial-table tbody tr").first.get_attribute("data-trial") == (
        simba.best_trial_id
    )

    p.locator("table.trial-table a", has_text="candidate 1").click()
    p.wait_for_url(f"**/trials/{simba.trials[1].id}")
    assert p.locator("h2").first.inner_text() == "Trial 1 · candidate 1 (Score: 0.8333)"
    page.assert_no_script_ran()


def test_trial_page_filters_expands_and_searches(server, page, simba, artifacts):
    p = page.page
    trial = simba.trials[1]
    p.goto(f"{server.url}/experiments/{simba.id}/trials/{trial.id}")
    assert p.locator(".dspex-controls").is_visible()  # shown only when the script runs
    executions = _visible_entries(p, "execution")
    assert executions > 0

    # Expanding an LM call shows its prompt.
    call = p.locator("details.lm-call").first
    prompt = call.locator(".text pre").first
    assert not prompt.is_visible()
    call.locator(":scope > summary").click()
    assert prompt.is_visible()
    assert "trajectories" in prompt.inner_text()
    p.screenshot(path=str(artifacts / "web-trial-expanded.png"), full_page=True)

    # Filtering by source hides the execution items; again shows them.
    button = p.locator(".dspex-controls button[data-axis=source][data-value=execution]")
    button.click()
    assert _visible_entries(p, "execution") == 0
    assert _visible_entries(p, "orchestration") > 0
    assert p.locator("details.dspex-block.src-execution:visible").count() == 0
    p.screenshot(path=str(artifacts / "web-trial-filtered.png"), full_page=True)
    button.click()
    assert _visible_entries(p, "execution") == executions

    # Filtering by worker and by module.
    p.locator(".dspex-controls button[data-axis=worker][data-value=worker-1]").click()
    assert p.locator(".dspex-entry[data-worker=worker-1]:visible").count() == 0
    p.locator(".dspex-controls button[data-axis=worker][data-value=worker-1]").click()
    p.locator(".dspex-controls button[data-axis=module][data-value='qa.predict']").click()
    assert p.locator(".dspex-entry[data-module='qa.predict']:visible").count() == 0
    assert p.locator(".dspex-entry[data-module=qa]:visible").count() > 0
    p.locator(".dspex-controls button[data-axis=module][data-value='qa.predict']").click()

    # Search keeps only matching events.
    p.locator(".dspex-controls input[type=search]").fill("high-variance bucket")
    visible = p.locator(".dspex-entry:visible")
    assert visible.count() == 1 and "Rationale" in visible.first.inner_text()
    assert p.locator(".shown-count").inner_text().startswith("1 of ")
    page.assert_no_script_ran()


def test_long_trial_page_paginates(server, page, artifacts):
    p = page.page
    p.goto(server.url + "/?optimizer=none")
    assert p.locator("table.experiments tbody tr").count() == 1
    p.get_by_role("link", name="large").click()
    p.locator("table.trial-table a").first.click()
    p.wait_for_url("**/trials/**")
    p.wait_for_load_state("load")
    assert p.locator(".dspex-entry").count() == 400
    p.locator(".pager a", has_text="later").first.click()
    p.wait_for_url("**offset=400")
    p.wait_for_load_state("load")
    assert int(p.locator(".dspex-entry").first.get_attribute("data-seq")) == 400
    p.screenshot(path=str(artifacts / "web-trial-long.png"))
    page.assert_no_script_ran()


def test_no_injected_script_runs_and_the_text_is_shown(server, page, simba):
    p = page.page
    urls = ["/", f"/experiments/{simba.id}"]
    urls += [f"/experiments/{simba.id}/trials/{t.id}" for t in simba.trials]
    for url in urls:
        p.goto(server.url + url)
        p.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.assert_no_script_ran()
    p.goto(f"{server.url}/experiments/{simba.id}/trials/{simba.trials[0].id}")
    p.locator("details.lm-call").first.evaluate("d => d.open = true")
    response = p.locator("details.lm-call").first.locator("pre", has_text="alert").first
    assert all(x in response.inner_text() for x in XSS)
    assert p.locator("img, svg[onload], textarea").count() == 0
    page.assert_no_script_ran()


def test_token_protected_server_in_the_browser(page, simba):
    store = ResultStore.open("memory://")
    store.archive_experiment(simba)
    with LiveServer(create_app(store, token="s3cret")) as live:
        p = page.page
        response = p.goto(live.url + "/")
        assert response.status == 401
        assert "access token" in p.locator("[role=alert]").inner_text()
        p.goto(live.url + "/?token=s3cret")
        assert p.url == live.url + "/"  # the token left the address bar
        assert p.locator("table.experiments tbody tr").count() == 1
