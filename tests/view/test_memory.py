"""Memory bounded per server: the cache by bytes (``ui.cache_mb``), the trial JSON API in
pages with a total, and long trials viewed by a real ``dspex ui`` (the long runs carry the
``hostile`` marker; CI runs them in ``make test``)."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

import dspex
from dspex import ResultStore
from dspex.view.web import create_app
from dspex.view.web._sizes import measured_size
from dspex.view.web.cache import ByteCache
from dspex.view.web.trial_api import MAX_EVENTS
from tests.view.big_trials import LONG_TRIAL, long_experiment
from tests.view.conftest import make_client


@pytest.fixture
def long_store():
    store = ResultStore.open("memory://")
    experiment = long_experiment(2_500)
    store.archive_experiment(experiment)
    return store, experiment


# -- the trial JSON API, paged -------------------------------------------------------------


def test_the_trial_is_a_header_with_a_count_and_its_events_come_in_pages(long_store):
    store, experiment = long_store
    trial = experiment.trials[LONG_TRIAL]
    client = make_client(create_app(store))
    base = f"/api/experiments/{experiment.id}/trials/{trial.id}"
    header = client.get(base).json()
    assert header["events"] == [] and header["event_count"] == 2_500
    assert header["events_url"] == base + "/events"
    events, url, pages = [], header["events_url"] + "?limit=1000", 0
    while url:
        page = client.get(url).json()
        assert page["total"] == 2_500 and len(page["events"]) <= 1000
        events += page["events"]
        url, pages = page["next"], pages + 1
    assert pages == 3
    record = {k: v for k, v in header.items() if k not in ("event_count", "events_url")}
    assert dspex.Trial.from_dict({**record, "events": events}) == trial
    first = client.get(header["events_url"]).json()  # the default page
    assert first["offset"] == 0 and first["limit"] == 500 and len(first["events"]) == 500


def test_a_page_past_the_end_is_empty_and_a_row_number_names_the_trial(long_store):
    store, experiment = long_store
    client = make_client(create_app(store))
    page = client.get(f"/api/experiments/{experiment.id}/trials/1/events?offset=9999").json()
    assert page == {"total": 2_500, "offset": 9999, "limit": 500, "next": None, "events": []}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit must be 1..5000, got '0'"),
        (f"limit={MAX_EVENTS + 1}", "limit must be 1..5000, got '5001'"),
        ("offset=-1", "offset must be an integer >= 0, got '-1'"),
        ("offset=many", "offset must be an integer >= 0, got 'many'"),
    ],
)
def test_a_bad_range_is_a_400_naming_the_limit(long_store, query, message):
    store, experiment = long_store
    client = make_client(create_app(store))
    response = client.get(f"/api/experiments/{experiment.id}/trials/1/events?{query}")
    assert response.status_code == 400 and response.json() == {"error": message}


def test_an_unknown_trial_is_a_404_before_any_event(long_store):
    store, experiment = long_store
    client = make_client(create_app(store))
    url = f"/api/experiments/{experiment.id}/trials/{dspex.new_id('trl')}/events"
    assert client.get(url).status_code == 404


def test_a_short_trial_comes_whole_in_one_page(store, simba):
    client = make_client(create_app(store))
    trial = simba.trials[1]
    page = client.get(f"/api/experiments/{simba.id}/trials/{trial.id}/events?limit=5000").json()
    assert page["next"] is None
    assert [dspex.TraceEvent.from_dict(e) for e in page["events"]] == list(trial.events)


# -- the cache, by bytes ------------------------------------------------------------------


def test_a_parsed_trial_is_measured_within_a_fifth_of_what_parsing_it_allocated():
    data = long_experiment(5_000).trials[LONG_TRIAL].to_json_bytes()
    gc.collect()
    tracemalloc.start()
    try:
        trial = dspex.Trial.from_json(data)
        allocated = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    measured = measured_size(trial)
    assert 0.8 * allocated < measured < 1.25 * allocated, (measured, allocated)


def test_the_cache_keeps_the_most_recent_entries_within_its_budget():
    cache = ByteCache(budget=1000)
    for n in range(10):
        assert cache.put(n, bytes(300), 300)
    assert cache.size <= 1000 and list(cache.sizes()) == [7, 8, 9]
    assert cache.get(8) is not None
    cache.put(10, bytes(300), 300)
    assert list(cache.sizes()) == [9, 8, 10]
    assert not cache.put("huge", bytes(501), 501) and cache.get("huge") is None


def test_viewing_long_trials_keeps_the_app_within_ui_cache_mb(tmp_path):
    store = ResultStore.open(f"file://{tmp_path / 'store'}")
    experiments = [long_experiment(6_000) for _ in range(4)]
    for experiment in experiments:
        store.archive_experiment(experiment)
    app = create_app(store, cache_mb=16)
    client = make_client(app)
    for experiment in experiments:
        for url in (
            f"/experiments/{experiment.id}",
            f"/experiments/{experiment.id}/trials/1",
            f"/experiments/{experiment.id}/trials/1?offset=400",
            f"/api/experiments/{experiment.id}/trials/1/events?offset=1000",
        ):
            assert client.get(url).status_code == 200
    cache = _cache_of(app)
    assert 0 < cache.size <= 16 * 2**20
    assert all(size <= 8 * 2**20 for size in cache.sizes().values())
    kinds = {key[0] for key in cache.sizes()}
    assert "rendered" in kinds  # pages stay: a second view is served from memory


def test_ui_cache_mb_is_a_setting_with_a_range():
    problems = dspex.config.check(environ={"DSPEX_UI_CACHE_MB": "8"})
    assert any("ui.cache_mb" in p and "16" in p for p in problems), problems


def _cache_of(app) -> ByteCache:
    for route in app.routes:
        handlers = getattr(route.endpoint, "__self__", None)
        if handlers is not None and hasattr(handlers, "cache"):
            return handlers.cache.entries
    raise AssertionError("no cache in the app")


# -- the report's views, full size, in a real dspex ui (hostile) -----------------------------

CACHE_MB = 64
MARGIN_MB = 200
"""What the server holds besides its cache: Python, the web stack, dspex, a page in flight."""


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in open(f"/proc/{pid}/status", encoding="ascii"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.hostile
@pytest.mark.timeout(1800)
def test_five_100000_event_trials_and_one_of_200000_stay_within_the_cache_bound(tmp_path):
    """The attack's own sizes; about 90 s on an idle 2-core machine since the timeline
    of a long trial is no longer quadratic (it took 4 minutes idle, 13 loaded)."""
    from tests.view.hostile import ui_process

    url = f"file://{tmp_path / 'store'}"
    store = ResultStore.open(url)
    trials = []
    for events in (100_000,) * 5 + (200_000,):
        experiment = long_experiment(events)
        store.archive_experiment(experiment)
        trials.append((experiment.id, experiment.trials[LONG_TRIAL].id, events))
        del experiment
    store.close()
    env = {"DSPEX_UI_CACHE_MB": str(CACHE_MB)}
    with ui_process(tmp_path, url, env=env) as ui:
        pid = ui.process.pid
        started = _rss_mb(pid)
        for experiment_id, trial_id, events in trials:
            page = f"/experiments/{experiment_id}/trials/{trial_id}"
            api = f"/api/experiments/{experiment_id}/trials/{trial_id}"
            views = [
                page,
                page + "?offset=400",
                api,
                api + "/events",
                api + f"/events?offset={events - 5000}&limit=5000",
            ]
            cold, warm = [], []
            for view in views:
                response, seconds = ui.get(view, timeout=600)
                assert response.status_code == 200, (view, response.text[:500])
                cold.append(round(seconds, 2))
            for view in views:
                response, seconds = ui.get(view)
                assert response.status_code == 200 and seconds < 1, (view, seconds)
                warm.append(round(seconds, 2))
            print(f"{events} events: cold {cold} s, warm {warm} s, rss {_rss_mb(pid):.0f} MB")
            body = ui.get(api + f"/events?offset={events - 5000}&limit=5000")[0].json()
            assert body["total"] == events and len(body["events"]) == 5000
            assert body["next"] is None and body["events"][-1]["sequence"] == events - 1
            assert _rss_mb(pid) < CACHE_MB + MARGIN_MB, (trial_id, _rss_mb(pid))
        peak = _rss_mb(pid, "VmHWM")
        print(f"rss at start {started:.0f} MB, peak {peak:.0f} MB")
        assert ui.stop() < 2
    assert peak < CACHE_MB + MARGIN_MB, peak
    assert "Traceback" not in ui.output()


def test_a_finished_experiment_too_large_to_keep_is_not_read_again_for_its_pages(tmp_path):
    store = ResultStore.open(f"file://{tmp_path / 'store'}")
    experiment = long_experiment(6_000)  # about 25 MB parsed: over half of 16 MB
    store.archive_experiment(experiment)
    reads = []
    read = store.get_experiment
    store.get_experiment = lambda experiment_id, events=True: (
        reads.append((experiment_id, events)) or read(experiment_id, events=events)
    )
    client = make_client(create_app(store, cache_mb=16))
    short = experiment.trials[0]
    for url in (
        f"/experiments/{experiment.id}",
        f"/api/experiments/{experiment.id}",
        f"/experiments/{experiment.id}/trials/{short.id}",
    ):
        first, again = client.get(url), client.get(url)
        assert first.status_code == again.status_code == 200 and first.text == again.text
    # once per page, not once per view: the page and its JSON read the trials without
    # their events (small: kept), the trial page the whole record (too large to keep)
    assert reads == [(experiment.id, False), (experiment.id, True)]
    assert ("experiment", experiment.id) not in _cache_of(client.app).sizes()
