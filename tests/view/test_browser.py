"""The web UI in Chromium: a real uvicorn server, clicked through with Playwright."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

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
    # one panel per scope; each scored trial a point that links to its trial page
    points = p.locator("section.dspex-plot svg a circle")
    assert points.count() == len(simba.trials)
    assert p.locator("section.dspex-plot path.best-so-far").count() == 1
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
    assert p.locator("h2").first.inner_text() == "Trial 1 · candidate 1 · 0.8333 on full (n=6)"
    page.assert_no_script_ran()


def test_compare_two_trials_picked_from_tables(server, page, simba, artifacts):
    p = page.page
    p.goto(server.url + "/")
    p.get_by_role("link", name="compare").click()
    p.wait_for_url("**/compare")
    # Two experiments' tables; pick the same experiment on both sides.
    p.locator(f"fieldset[data-side=a] tr[data-experiment='{simba.id}'] input").check()
    p.locator(f"fieldset[data-side=b] tr[data-experiment='{simba.id}'] input").check()
    p.get_by_role("button", name="Compare").click()
    # Now each side lists that experiment's trials: pick the baseline and candidate 2.
    baseline, candidate = simba.trials[0], simba.trials[2]
    p.locator(f"fieldset[data-side=a] tr[data-trial='{baseline.id}'] input").check()
    p.locator(f"fieldset[data-side=b] tr[data-trial='{candidate.id}'] input").check()
    p.get_by_role("button", name="Compare").click()
    p.wait_for_url("**/compare?a=*")
    view = p.locator(".dspex-compare")
    assert "Trial 0 · baseline" in view.locator("table.sides").inner_text()
    stats = view.locator("section.dspex-statistics").inner_text()
    assert "exact McNemar" in stats and "B better on 2, A better on 0, same on 4" in stats
    outcomes = view.locator("table.examples tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.outcome)"
    )
    assert outcomes == ["win", "win", "tie", "tie", "tie", "tie"]
    assert (
        p.locator("fieldset[data-side=b] input:checked")
        .get_attribute("value")
        .endswith(candidate.id)
    )
    p.screenshot(path=str(artifacts / "web-compare.png"), full_page=True)
    view.locator("table.sides a", has_text="candidate 2").click()
    p.wait_for_url(f"**/trials/{candidate.id}")
    page.assert_no_script_ran()


def test_experiment_page_links_best_and_baseline_side_by_side(server, page, simba):
    p = page.page
    p.goto(f"{server.url}/experiments/{simba.id}")
    p.locator("section.dspex-best a.compare-link").click()
    p.wait_for_url("**/compare?a=*")
    sides = p.locator(".dspex-compare table.sides").inner_text()
    assert "Trial 0 · baseline" in sides and "Trial 2 · candidate 2" in sides
    page.assert_no_script_ran()


def test_trial_page_filters_expands_and_searches(server, page, simba, artifacts):
    p = page.page
    trial = simba.trials[1]
    p.goto(f"{server.url}/experiments/{simba.id}/trials/{trial.id}")
    assert p.locator(".dspex-controls").is_visible()  # shown only when the script runs
    p.evaluate("document.querySelectorAll('details.example-run').forEach(d => d.open = true)")
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
    p.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
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


def test_trial_table_filters_sort_by_keyboard_and_keep_their_state_in_the_url(server, page, simba):
    p = page.page
    p.goto(f"{server.url}/experiments/{simba.id}")
    rows = p.locator("table.trial-table tbody tr:visible")
    assert rows.count() == 4
    form = p.locator("form.trial-filters")
    assert form.is_visible()  # shown only when the script runs
    form.locator("select[data-filter=strategy]").select_option("append_a_rule")
    assert rows.count() == 2 and "2 of 4 trials shown" in form.inner_text()
    form.locator("input[data-filter=min]").fill("0.8")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-trial") == simba.trials[1].id
    assert "t_strategy=append_a_rule" in p.url and "t_min=0.8" in p.url

    # Sort by the keyboard: focus the score header's button and press Enter.
    form.locator("button[data-filter=reset]").click()
    assert rows.count() == 4 and "t_min" not in p.url
    score = p.locator("table.trial-table th", has_text="score").locator("button")
    score.focus()
    p.keyboard.press("Enter")
    assert p.locator("table.trial-table th[aria-sort=ascending]").inner_text().startswith("score")
    p.keyboard.press("Enter")
    assert rows.first.get_attribute("data-trial") == simba.best_trial_id
    assert "sort=score" in p.url and "dir=desc" in p.url

    # A reload (or a shared link) shows the same rows in the same order.
    p.goto(f"{server.url}/experiments/{simba.id}?t_strategy=append_a_demo&sort=score&dir=desc")
    assert rows.count() == 1 and form.locator("select[data-filter=strategy]").input_value() == (
        "append_a_demo"
    )
    page.assert_no_script_ran()


def test_parents_are_links_and_the_lineage_is_folded_to_the_best_branch(server, page, simba):
    p = page.page
    p.goto(f"{server.url}/experiments/{simba.id}")
    child = p.locator(f"tr[data-trial={simba.trials[2].id}] td.parents a")
    assert child.inner_text() == "#1 c1"
    child.click()
    p.wait_for_url(f"**/trials/{simba.trials[1].id}")
    p.go_back()
    lineage = p.locator(".dspex-lineage")
    best = simba.best_trial
    assert lineage.get_by_role("link", name=f"Trial {best.index}").first.is_visible()
    folded = lineage.locator("details:not([open])")
    assert all("on-best-path" not in (d.evaluate("d => d.parentElement.className")) for d in
               folded.all())  # fmt: skip


def test_expanders_work_from_the_keyboard_and_focus_is_visible(server, page, simba):
    p = page.page
    p.goto(f"{server.url}/experiments/{simba.id}/trials/{simba.trials[1].id}")
    call = p.locator("details.lm-call").first
    summary = call.locator(":scope > summary")
    summary.focus()
    outline = summary.evaluate("s => getComputedStyle(s).outlineStyle")
    assert outline == "solid"  # :focus-visible after keyboard focus
    p.keyboard.press("Enter")
    assert call.evaluate("d => d.open") is True
    p.keyboard.press("Space")
    assert call.evaluate("d => d.open") is False


def test_dark_scheme_differs_from_light(server, chromium, simba, artifacts):
    shots = {}
    for scheme in ("light", "dark"):
        context = chromium.new_context(viewport={"width": 1000, "height": 700}, color_scheme=scheme)
        try:
            p = context.new_page()
            p.goto(f"{server.url}/experiments/{simba.id}/trials/{simba.trials[1].id}")
            path = artifacts / f"web-trial-{scheme}.png"
            p.screenshot(path=str(path))
            shots[scheme] = path.read_bytes()
            background = p.evaluate("getComputedStyle(document.body).backgroundColor")
            shots[scheme + "-bg"] = background
        finally:
            context.close()
    assert shots["light"] != shots["dark"]
    assert shots["light-bg"] == "rgb(255, 255, 255)" and shots["dark-bg"] == "rgb(13, 17, 23)"


def test_a_deep_link_opens_the_page_and_the_block_holding_the_event(server, page):
    p = page.page
    large = large_experiment()
    trial = large.trials[0]
    late = sorted(trial.events, key=lambda e: e.sequence)[-5]  # on the last page
    p.goto(f"{server.url}/experiments/{large.id}/trials/{trial.id}#{late.id}")
    p.wait_for_url(f"**event={late.id}*")
    target = p.locator(f"[id='{late.id}']")
    expect(target).to_be_visible()
    assert "target" in target.get_attribute("class")
    assert "offset" not in p.url or int(p.url.split("offset=")[1].split("&")[0]) > 0
    page.assert_no_script_ran()


def test_an_event_query_scrolls_to_the_event_like_a_hash(server, page):
    p = page.page
    large = large_experiment()
    trial = large.trials[0]
    late = sorted(trial.events, key=lambda e: e.sequence)[-5]  # on the last page
    p.goto(f"{server.url}/experiments/{large.id}/trials/{trial.id}?event={late.id}")
    target = p.locator(f"[id='{late.id}']")
    expect(target).to_be_visible()
    expect(target).to_have_class(re.compile(r"\btarget\b"))
    box = target.bounding_box()
    height = p.evaluate("window.innerHeight")
    assert box is not None and 0 <= box["y"] < height  # scrolled into view
    page.assert_no_script_ran()


def test_example_runs_fold_into_one_row_each_and_the_waterfall_links_to_events(server, page, simba):
    p = page.page
    trial = simba.trials[1]
    p.goto(f"{server.url}/experiments/{simba.id}/trials/{trial.id}")
    runs = p.locator("details.example-run")
    examples = [e for e in trial.events if e.kind.value == "example_result"]
    assert runs.count() == len(examples)
    assert not runs.first.locator(".dspex-entry").first.is_visible()
    bar = p.locator(".dspex-waterfall a.wf-row").nth(1)
    target = bar.get_attribute("href").lstrip("#")
    bar.click()
    expect(p.locator(f"[id='{target}']")).to_be_visible()  # its run opened to show it


def test_a_long_trial_read_a_page_at_a_time_pages_and_opens_a_deep_link(tmp_path, page):
    from tests.view.big_trials import LONG_TRIAL, long_experiment

    store = ResultStore.open(f"file://{tmp_path / 'store'}")
    experiment = long_experiment(3_000)
    store.archive_experiment(experiment)
    app = create_app(store)
    handlers = next(r.endpoint.__self__ for r in app.routes if hasattr(r.endpoint, "__self__"))
    handlers.long_trial = 1_000  # read a page at a time
    trial = experiment.trials[LONG_TRIAL]
    p = page.page
    with LiveServer(app) as live:
        p.goto(f"{live.url}/experiments/{experiment.id}/trials/{trial.id}")
        expect(p.locator(".pager").first).to_contain_text("Events 1–400 of 3000")
        expect(p.locator(".window-note")).to_contain_text("events 1–400 of 3,000")
        assert p.locator(".dspex-entry").count() == 400
        p.locator(".pager a", has_text="later").first.click()
        expect(p.locator(".pager").first).to_contain_text("Events 401–800 of 3000")
        first = p.locator(".dspex-entry").first.get_attribute("id")
        assert first == trial.events[400].id
        # every waterfall row points into the page: it covers the page's events
        away = p.locator(".dspex-waterfall a.wf-row").evaluate_all(
            "rows => rows.map(r => r.getAttribute('href').slice(1))"
            ".filter(id => !document.getElementById(id))"
        )
        assert away == []
        # a link to an event on another page: the server finds its page
        far = trial.events[2_500].id
        p.goto(f"{live.url}/experiments/{experiment.id}/trials/{trial.id}?event={far}")
        expect(p.locator(".pager").first).to_contain_text("Events 2401–2800 of 3000")
        target = p.locator(f"[id='{far}']")
        expect(target).to_be_visible()
        expect(target).to_have_class(re.compile(r"\btarget\b"))
    page.assert_no_script_ran()
