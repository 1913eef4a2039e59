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


def test_list_applies_store_filters(client):
    assert "data-experiment" in client.get("/?optimizer=SIMBA&min_score=0.9").text
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
    assert doc.find("h2").text() == "Trial 1 · candidate 1 (Score: 0.8333)"
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
    assert dspex.Trial.from_dict(data) == trial


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
