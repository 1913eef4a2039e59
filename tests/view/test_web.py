"""The web app through Starlette's TestClient: pages, JSON, errors, the token, dspex ui."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import dspex
from dspex import ConfigError, ResultStore, new_id
from dspex.cli import main
from dspex.view.web import check_bind, create_app
from dspex.view.web.app import EVENTS_PER_PAGE
from tests.view.conftest import make_client
from tests.view.fixtures import XSS, large_experiment
from tests.view.htmltree import parse


@pytest.fixture
def client(store):
    return make_client(create_app(store))


def test_list_shows_experiments_with_links(client, simba):
    response = client.get("/")
    assert response.status_code == 200
    rows = parse(response.text).find("table", "experiments").find("tbody").find_all("tr")
    assert [r.attrs["data-experiment"] for r in rows] == [simba.id]
    assert rows[0].find("a").attrs["href"] == f"/experiments/{simba.id}"
    assert XSS[0] in rows[0].text() and XSS[0] not in response.text
    assert "inconclusive" in rows[0].find("span", "verdict").text()  # the stored verdict
    assert "on full (n=6)" in rows[0].text()  # where the best score was measured


def test_list_applies_store_filters(client, simba):
    assert "data-experiment" in client.get(f"/?optimizer=SIMBA&min_score=0.9&scope={simba.id}").text
    assert client.get("/?optimizer=SIMBA&min_score=0.9").status_code == 400  # needs a scope
    assert "data-experiment" not in client.get("/?optimizer=MIPROv2").text
    assert "data-experiment" in client.get("/?status=completed&status=failed").text
    assert "data-experiment" in client.get("/?status=completed,failed&tags=simba").text
    assert "data-experiment" not in client.get("/?tags=simba,other").text


@pytest.mark.parametrize("query", ["programme=qa", "min_score=high", "status=done"])
def test_invalid_filter_answers_400_with_the_message(client, query):
    response = client.get("/?" + query)
    assert response.status_code == 400
    alert = parse(response.text).find(role="alert").text()
    with pytest.raises(dspex.InvalidQueryError) as raised:
        ResultStore.open("memory://").query_experiments(dict([query.split("=")]))
    assert alert == str(raised.value)
    api = client.get("/api/experiments?" + query)
    assert api.status_code == 400 and api.json()["error"] == str(raised.value)


def test_experiment_and_trial_pages_use_the_notebook_renderers(client, simba):
    page = parse(client.get(f"/experiments/{simba.id}").text)
    names = page.find("table", "trial-table").find_all("td", "name")
    links = [td.find("a").attrs["href"] for td in names]
    assert links == [f"/experiments/{simba.id}/trials/{t.id}" for t in simba.trials]
    trial = simba.trials[1]
    response = client.get(links[1])
    assert response.status_code == 200
    doc = parse(response.text)
    assert doc.find("h2").text() == "Trial 1 · candidate 1 · 0.8333 on full (n=6)"
    assert len(doc.find_all(cls="dspex-entry")) == len(trial.events)
    assert doc.find("title").text().startswith("Trial 1")


def test_trial_page_filters_on_the_server(client, simba):
    url = f"/experiments/{simba.id}/trials/{simba.trials[1].id}"
    doc = parse(client.get(url + "?source=orchestration").text)
    assert {e.attrs["data-source"] for e in doc.find_all(cls="dspex-entry")} == {"orchestration"}
    doc = parse(client.get(url + "?q=OfferFeedback").text)
    assert [e.attrs["data-seq"] for e in doc.find_all(cls="kind-decision")]


def test_json_endpoints(client, simba):
    listing = client.get("/api/experiments").json()
    assert [e["id"] for e in listing["experiments"]] == [simba.id]
    experiment = client.get(f"/api/experiments/{simba.id}").json()
    assert experiment["name"] == simba.name
    assert [t["event_count"] for t in experiment["trials"]] == [len(t.events) for t in simba.trials]
    assert all(t["events"] == [] for t in experiment["trials"])
    trial = simba.trials[2]
    data = client.get(f"/api/experiments/{simba.id}/trials/{trial.id}").json()
    assert data.pop("event_count") == len(trial.events) and data.pop("events_url")
    events = client.get(f"/api/experiments/{simba.id}/trials/{trial.id}/events").json()
    assert dspex.Trial.from_dict({**data, "events": events["events"]}) == trial


@pytest.mark.parametrize(
    "path",
    [
        "/experiments/{unknown_exp}",
        "/experiments/{exp}/trials/{unknown_trl}",
        "/experiments/{unknown_exp}/trials/{unknown_trl}",
        "/experiments/not-an-id",
        "/experiments/{exp}/trials/..%2f..%2fetc",
        "/api/experiments/{unknown_exp}",
        "/api/experiments/{exp}/trials/{unknown_trl}",
        "/api/experiments/exp_<script>",
        "/no/such/page",
    ],
)
def test_unknown_or_malformed_ids_answer_404_with_a_message(client, simba, path):
    url = path.format(exp=simba.id, unknown_exp=new_id("exp"), unknown_trl=new_id("trl"))
    response = client.get(url)
    assert response.status_code == 404
    if url.startswith("/api/"):
        assert response.json()["error"]
    else:
        message = parse(response.text).find(role="alert").text()
        assert message and (
            "no " in message or "not a dspex id" in message or "Not Found" in message
        )
        assert "<script>" not in response.text


def test_security_headers_and_server_timing(client, simba):
    response = client.get(f"/experiments/{simba.id}")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["server-timing"].startswith("app;dur=")


# -- the access token -----------------------------------------------------------------


def test_non_loopback_host_is_refused_without_a_token():
    with pytest.raises(ConfigError, match="ui.token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "s3cret")
    check_bind("127.0.0.1", None)
    check_bind("::1", None)


def test_dspex_ui_refuses_a_public_host_without_a_token():
    result = CliRunner().invoke(main, ["ui", "--host", "0.0.0.0", "--store", "memory://"])
    assert result.exit_code != 0
    assert "without an access token" in result.output


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:8765", "[::1]:8765", "localhost:1"])
def test_loopback_host_names_are_served(store, host):
    client = make_client(create_app(store))
    assert client.get("/", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example"])
def test_other_host_names_are_refused_without_a_token(store, host):
    # A page on another site could otherwise read the UI through DNS rebinding.
    client = make_client(create_app(store))
    response = client.get("/api/experiments", headers={"host": host})
    assert response.status_code == 400
    assert "unexpected Host" in response.json()["error"]
    with_token = make_client(create_app(store, token="s3cret"))
    ok = with_token.get(
        "/api/experiments", headers={"host": host, "Authorization": "Bearer s3cret"}
    )
    assert ok.status_code == 200


def test_non_ascii_tokens_are_refused_not_crashing(store):
    client = make_client(create_app(store, token="s3cret"))
    assert client.get("/?token=%C3%A9").status_code == 401
    assert client.get("/", headers={"Authorization": b"Bearer \xc3\xa9"}).status_code == 401


def test_token_is_required_when_configured(store, simba):
    client = make_client(create_app(store, token="s3cret"))
    assert client.get("/").status_code == 401
    assert client.get("/api/experiments").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    bearer = client.get("/api/experiments", headers={"Authorization": "Bearer s3cret"})
    assert bearer.status_code == 200 and bearer.json()["experiments"]


def test_token_in_the_query_sets_a_cookie_and_is_dropped_from_the_address(store, simba):
    client = make_client(create_app(store, token="s3cret"))
    response = client.get(f"/experiments/{simba.id}?token=s3cret", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/experiments/{simba.id}")
    assert "httponly" in response.headers["set-cookie"].lower()
    assert client.get(f"/experiments/{simba.id}").status_code == 200  # the cookie now


# -- a long trial ---------------------------------------------------------------------


def test_long_trial_is_paginated():
    store = ResultStore.open("memory://")
    large = large_experiment()
    store.archive_experiment(large)
    client = make_client(create_app(store))
    url = f"/experiments/{large.id}/trials/{large.trials[0].id}"
    client.get(url)  # the first view parses the record; later views reuse it
    response = client.get(url)
    doc = parse(response.text)
    assert len(doc.find_all(cls="dspex-entry")) == EVENTS_PER_PAGE
    pager = doc.find(cls="pager")
    assert f"of {len(large.trials[0].events)}" in pager.text()
    following = pager.find("a").attrs["href"]
    assert following == f"?offset={EVENTS_PER_PAGE}"
    second = parse(client.get(url + following).text)
    first_seq = int(second.find(cls="dspex-entry").attrs["data-seq"])
    assert first_seq == EVENTS_PER_PAGE  # speed: benchmarks/bench_viewer.py


# -- running experiments, progress and caching ----------------------------------------


def _running(store, simba, trials=1):
    running = simba.replace(status="running", completed_at=None, trials=(), summary=None,
                            best_trial_id=None)  # fmt: skip
    store.start_experiment(running)
    for trial in simba.trials[:trials]:
        store.record_trial(simba.id, trial)
    return running


def test_progress_of_a_running_experiment_follows_the_store():
    from tests.view.fixtures import simba_experiment

    simba = simba_experiment()
    store = ResultStore.open("memory://")
    _running(store, simba, trials=1)
    client = make_client(create_app(store))
    first = client.get(f"/api/experiments/{simba.id}/progress").json()
    assert first["running"] is True and first["trials"] == 1 and first["version"] == "running:1"
    assert [b["scope"] for b in first["best"]] == ["full"]
    page = parse(client.get(f"/experiments/{simba.id}").text)
    root = page.find("div", "dspex-experiment")
    assert root.attrs["data-live-url"] == f"/api/experiments/{simba.id}/progress"
    assert root.attrs["data-live-version"] == "running:1"
    store.record_trial(simba.id, simba.trials[1])  # a trial lands: the cache notices
    second = client.get(f"/api/experiments/{simba.id}/progress").json()
    assert second["trials"] == 2 and second["version"] == "running:2"
    assert len(client.get(f"/api/experiments/{simba.id}").json()["trials"]) == 2
    store.archive_experiment(simba)
    done = client.get(f"/api/experiments/{simba.id}/progress").json()
    assert done["running"] is False and done["status"] == "completed"
    page = parse(client.get(f"/experiments/{simba.id}").text)
    assert "data-live-url" not in page.find("div", "dspex-experiment").attrs


def test_a_finished_experiment_is_read_once_and_its_json_built_once(store, simba, monkeypatch):
    reads = []
    backend = store.backend
    load = backend.load
    monkeypatch.setattr(backend, "load", lambda i: reads.append(i) or load(i))
    client = make_client(create_app(store))
    bodies = {client.get(f"/api/experiments/{simba.id}").content for _ in range(3)}
    client.get(f"/experiments/{simba.id}")
    assert reads == [simba.id] and len(bodies) == 1


def test_an_event_link_opens_the_page_that_holds_it():
    store = ResultStore.open("memory://")
    large = large_experiment()
    store.archive_experiment(large)
    client = make_client(create_app(store))
    trial = large.trials[0]
    timeline_ids = [e.attrs["id"] for e in parse(client.get(
        f"/experiments/{large.id}/trials/{trial.id}?offset={EVENTS_PER_PAGE * 2}").text
    ).find_all(cls="dspex-entry")]  # fmt: skip
    target = timeline_ids[5]
    doc = parse(client.get(f"/experiments/{large.id}/trials/{trial.id}?event={target}").text)
    assert target in [e.attrs["id"] for e in doc.find_all(cls="dspex-entry")]
    assert f"Events {EVENTS_PER_PAGE * 2 + 1}–" in doc.find(cls="pager").text()


def test_list_filters_are_selects_and_date_inputs_and_say_the_view_is_filtered(client, simba):
    doc = parse(client.get("/?hypothesis=appended+rules&status=completed&created_after=2026-01-01")
                .text)  # fmt: skip
    form = doc.find("form", "filters")
    status = form.find("select", name="status")
    assert [o.attrs["value"] for o in status.find_all("option") if "selected" in o.attrs] == [
        "completed"
    ]
    order = form.find("select", name="order_by")
    assert [o.attrs["value"] for o in order.find_all("option")] == ["created", "score"]
    dates = [i for i in form.find_all("input") if i.attrs.get("type") == "date"]
    assert [d.attrs["name"] for d in dates] == ["created_after", "created_before"]
    assert dates[0].attrs["value"] == "2026-01-01"
    search = form.find("input", name="hypothesis")
    assert search.attrs["value"] == "appended rules"  # the query stays in its box
    notice = doc.find(role="status").text()
    assert "Filtered by" in notice and "hypothesis contains appended rules" in notice
    assert "1 of 1 experiment" in notice
    assert parse(client.get("/").text).find_all(role="status") == []  # unfiltered: no notice


def test_running_experiments_are_marked_in_the_list():
    from tests.view.fixtures import simba_experiment

    simba = simba_experiment()
    store = ResultStore.open("memory://")
    _running(store, simba)
    doc = parse(make_client(create_app(store)).get("/").text)
    row = doc.find("tr", data_experiment=simba.id)
    assert row.attrs["data-status"] == "running" and row.find("span", "running")
    assert "1 running" in doc.text()


def test_data_in_new_sections_is_escaped(simba):
    # Role, strategy and scope names come from records: they fill filters and cells.
    hostile = [
        t.replace(metadata={"role": XSS[1]}, events=tuple(
            e.replace(payload={**e.payload, "scope": XSS[4]}) if e.kind.value == "trial_score"
            else e for e in t.events))
        for t in simba.trials
    ]  # fmt: skip
    experiment = simba.replace(trials=tuple(hostile), status="running", completed_at=None,
                               summary=None, best_trial_id=None)  # fmt: skip
    store = ResultStore.open("memory://")
    store.start_experiment(experiment.replace(trials=()))
    for trial in experiment.trials:
        store.record_trial(experiment.id, trial)
    client = make_client(create_app(store))
    for url in ("/", f"/experiments/{experiment.id}",
                f"/experiments/{experiment.id}/trials/{hostile[1].id}"):  # fmt: skip
        text = client.get(url).text
        assert XSS[1] not in text and XSS[4] not in text
        doc = parse(text)
        assert not doc.find_all("img")
        assert not [n for n in doc.iter() if any(k.startswith("on") for k in n.attrs)]
    assert XSS[1] in parse(client.get(f"/experiments/{experiment.id}").text).text()
