"""Long trials are read a page at a time: the web UI's trial page and ``view_trial`` read
the experiment's trials without their events, the trial's event count and one page of
its events, and say which events they show (``dspex.view.window``)."""

from __future__ import annotations

import re

import pytest

import dspex
from dspex import InvalidQueryError, ResultStore, TraceViewer
from dspex.view.web import create_app
from tests.view.big_trials import LONG_TRIAL, long_experiment
from tests.view.conftest import make_client
from tests.view.fixtures import XSS_TEXT

EVENTS = 3_000
"""Long enough for many pages; the app is told that trials over 1,000 events are long."""


class _Reads:
    """The store's reads, counted: what a view asked the store for."""

    def __init__(self, store: ResultStore) -> None:
        self.whole: list[str] = []  # get_experiment / get_trial with every event
        self.events: list[tuple[int, int | None]] = []  # read_events(offset, limit)
        for name in ("get_experiment", "get_trial"):
            self._wrap(store, name)
        read = store.read_events

        def read_events(experiment_id, trial_id, offset=0, limit=None):
            self.events.append((offset, limit))
            return read(experiment_id, trial_id, offset, limit)

        store.read_events = read_events  # type: ignore[method-assign]

    def _wrap(self, store: ResultStore, name: str) -> None:
        original = getattr(store, name)

        def wrapped(*args, events=True, **kwargs):
            if events:
                self.whole.append(name)
            return original(*args, events=events, **kwargs)

        setattr(store, name, wrapped)

    def clear(self) -> None:
        self.whole.clear()
        self.events.clear()


REJECTED = {
    "optimizer": "SIMBA", "step": 9, "decision": "Reject candidate 1", "strategy": None,
    "rationale": "worse on the batch", "action": "", "details": {"accepted": False},
}  # fmt: skip


def _with_markup(experiment: dspex.Experiment) -> dspex.Experiment:
    """The long trial's first decision speaks in markup (a program's strings are data),
    and its last event is the decision that rejects it (on the last page only)."""
    trial = experiment.trials[LONG_TRIAL]
    events = list(trial.events)
    first = next(i for i, e in enumerate(events) if e.kind.value == "decision")
    payload = {**events[first].payload, "rationale": XSS_TEXT}
    events[first] = events[first].model_copy(update={"payload": payload})
    last = events[-1]
    events[-1] = dspex.TraceEvent(
        id=last.id, trial_id=last.trial_id, sequence=last.sequence, timestamp=last.timestamp,
        monotonic_ns=last.monotonic_ns, source="orchestration", kind="decision", pid=last.pid,
        worker=last.worker, payload=REJECTED,
    )  # fmt: skip
    trials = list(experiment.trials)
    trials[LONG_TRIAL] = trial.model_copy(update={"events": tuple(events)})
    return experiment.model_copy(update={"trials": tuple(trials)})


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    url = f"file://{tmp_path_factory.mktemp('long') / 'store'}"
    experiment = _with_markup(long_experiment(EVENTS))
    with ResultStore.open(url) as store:
        store.archive_experiment(experiment)
    return url, experiment


@pytest.fixture
def ui(recorded):
    url, experiment = recorded
    store = ResultStore.open(url, read_only=True)
    reads = _Reads(store)
    app = create_app(store)
    handlers = next(r.endpoint.__self__ for r in app.routes if hasattr(r.endpoint, "__self__"))
    handlers.long_trial = 1_000
    trial = experiment.trials[LONG_TRIAL]
    yield make_client(app), experiment, trial, reads
    store.close()


def _page_of(trial: dspex.Trial, first: int, last: int) -> tuple[set[str], set[str]]:
    """Ids of the trial's events ``first..last`` (0-based, inclusive) and of the others."""
    ids = [e.id for e in trial.events]
    return set(ids[first : last + 1]), set(ids[:first] + ids[last + 1 :])


def _ids_in(html: str) -> set[str]:
    return set(re.findall(r'class="dspex-entry[^"]*"[^>]*id="(evt_[0-9A-Z]+)"', html)) | set(
        re.findall(r'id="(evt_[0-9A-Z]+)"[^>]*class="dspex-entry', html)
    )


def test_the_first_view_reads_one_page_and_says_which_events_it_shows(ui):
    client, experiment, trial, reads = ui
    response = client.get(f"/experiments/{experiment.id}/trials/{trial.id}")
    assert response.status_code == 200
    html = response.text
    shown, others = _page_of(trial, 0, 399)
    assert _ids_in(html) == shown
    assert not any(f'id="{i}"' in html for i in others)  # later events are not on it
    assert "Events 1–400 of 3000." in html
    assert "this view read events 1–400 of 3,000 (a page at a time)" in html
    assert "2,600 events not shown (2,600 after)." in html
    # the whole trial's counts, from its stored summary
    lm_calls = sum(1 for e in trial.events if e.kind.value == "lm_call")
    assert f"{EVENTS} events · {lm_calls} LM calls" in html
    assert "Where the time went <span" in html and "events 1–400 of 3,000" in html
    assert '<span class="meta">· the decisions in events 1–400 of 3,000</span></h3>' in html
    # the outcome, decided on the last page, from the summary stored with the trial
    assert 'Why this trial: <span class="badge outcome-rejected">rejected</span>' in html
    # read: the trials' headers and one page of events, never the whole trial
    assert reads.whole == []
    assert reads.events == [(0, 400)]


def test_the_pages_link_to_each_other_and_the_last_one_ends(ui):
    client, experiment, trial, _ = ui
    base = f"/experiments/{experiment.id}/trials/{trial.id}"
    html = client.get(base).text
    later = re.search(r'<a href="([^"]+)">later →</a>', html)
    assert later is not None and later.group(1) == "?offset=400"
    second = client.get(base + later.group(1)).text
    assert _ids_in(second) == _page_of(trial, 400, 799)[0]
    assert "Events 401–800 of 3000." in second and '<a href="?offset=0">← earlier</a>' in second
    last = client.get(base + "?offset=2800").text
    assert _ids_in(last) == _page_of(trial, 2800, 2999)[0]
    assert "Events 2801–3000 of 3000." in last and "later →" not in last
    # the trial by its row number pages alike
    by_row = client.get(f"/experiments/{experiment.id}/trials/{trial.index}?offset=400").text
    assert _ids_in(by_row) == _page_of(trial, 400, 799)[0]


def test_a_deep_link_opens_the_page_that_holds_the_event(ui):
    client, experiment, trial, reads = ui
    event = trial.events[2_500]
    html = client.get(f"/experiments/{experiment.id}/trials/{trial.id}?event={event.id}").text
    assert f'id="{event.id}"' in html and "Events 2401–2800 of 3000." in html
    # found a chunk of events at a time, then its page read alone
    assert reads.whole == [] and max(limit or 0 for _, limit in reads.events) <= 2_000


def test_filters_apply_to_the_page_and_say_how_many_of_its_events_match(ui):
    client, experiment, trial, _ = ui
    page = trial.events[400:800]
    matching = sum(1 for e in page if e.source.value == "evaluation")
    html = client.get(
        f"/experiments/{experiment.id}/trials/{trial.id}?source=evaluation&offset=400"
    ).text
    assert f"Events 401–800 of 3000. {matching} of them match the filters." in html
    assert all(f'id="{e.id}"' not in html for e in page if e.source.value != "evaluation")


def test_event_strings_are_escaped(ui):
    client, experiment, trial, _ = ui
    html = client.get(f"/experiments/{experiment.id}/trials/{trial.id}").text
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("offset=-1", "offset must be an integer &gt;= 0, got &#39;-1&#39;"),
        ("offset=many", "offset must be an integer &gt;= 0, got &#39;many&#39;"),
        ("offset=3000", "offset 3,000 is past the trial&#39;s events: it has 3,000"),
        ("offset=99999999999999999999", "is past the trial&#39;s events"),
    ],
)
def test_a_bad_offset_is_a_400_that_says_why(ui, query, message):
    client, experiment, trial, _ = ui
    response = client.get(f"/experiments/{experiment.id}/trials/{trial.id}?{query}")
    assert response.status_code == 400 and message in response.text


def test_a_short_trial_beside_a_long_one_reads_only_the_long_ones_ends_and_looks_the_same(
    ui, recorded
):
    client, experiment, _, reads = ui
    short = experiment.trials[0]
    html = client.get(f"/experiments/{experiment.id}/trials/{short.id}").text
    assert _ids_in(html) == {e.id for e in short.events}
    assert "window-note" not in html
    assert reads.whole == ["get_trial"]  # this trial whole; the others' first, last events
    assert all(limit == 1 for _, limit in reads.events)
    with ResultStore.open(recorded[0], read_only=True) as store:  # the whole record read
        whole = make_client(create_app(store))
        assert whole.get(f"/experiments/{experiment.id}/trials/{short.id}").text == html
    bad = client.get(f"/experiments/{experiment.id}/trials/{short.id}?offset=-5")
    assert bad.status_code == 400


# -- TraceViewer.view_trial -----------------------------------------------------------------


def test_view_trial_of_a_long_trial_shows_its_first_page_and_how_to_see_more(recorded, monkeypatch):
    url, experiment = recorded
    monkeypatch.setattr("dspex.view.display.LONG_TRIAL", 1_000)
    store = ResultStore.open(url, read_only=True)
    reads = _Reads(store)
    trial = experiment.trials[LONG_TRIAL]
    view = TraceViewer.view_trial(experiment.id, trial.id, store=store)
    text = " ".join(view.to_text().split())  # wrapped at 100 columns
    html = view.to_html()
    assert reads.whole == [] and reads.events == [(0, 500)]
    assert view.window is not None and view.window.count == 500
    assert "events 1–500 of 3,000" in text
    assert "2,500 events not shown (2,500 after)." in text
    assert "The next 500: TraceViewer.view_trial(" in text and "offset=500)." in text
    assert _ids_in(html) == _page_of(trial, 0, 499)[0]
    assert "<script>alert(1)</script>" not in html
    assert f"{EVENTS} events" in view.to_short_text()
    assert "Why this trial: rejected" in text
    nxt = TraceViewer.view_trial(experiment.id, trial.id, store=store, offset=2_900, limit=200)
    assert [e.sequence for e in nxt.trial.events] == list(range(2_900, 3_000))
    last = " ".join(str(nxt).split())
    assert "events 2,901–3,000 of 3,000" in last and "The next" not in last
    with pytest.raises(InvalidQueryError, match="offset 3,000 is past the trial's events"):
        TraceViewer.view_trial(experiment.id, trial.id, store=store, offset=3_000)
    # a short trial shows whole, as it always did, without reading the long one
    reads.clear()
    short = TraceViewer.view_trial(experiment.id, experiment.trials[0].id, store=store)
    assert short.window is None and "a page at a time" not in short.to_text()
    assert reads.whole == ["get_trial"] and all(limit == 1 for _, limit in reads.events)
    monkeypatch.setattr("dspex.view.display.LONG_TRIAL", 20_000)
    same = TraceViewer.view_trial(experiment.id, experiment.trials[0].id, store=store)
    assert "get_experiment" in reads.whole  # read whole this time
    assert same.to_text() == short.to_text() and same.to_html() == short.to_html()
    store.close()


# -- the compare page -----------------------------------------------------------------------


def test_the_compare_page_reads_summaries_and_says_what_it_did_not_compare(ui):
    client, experiment, trial, reads = ui
    short = experiment.trials[0]
    html = client.get(f"/compare?a={experiment.id}:{short.id}&b={experiment.id}:{trial.id}").text
    assert reads.whole == ["get_trial"]  # the short trial only; the long one is a header
    assert reads.events == []
    assert f"B (Trial {trial.index}): its {EVENTS:,} events were not read" in html
    lm_calls = sum(1 for e in trial.events if e.kind.value == "lm_call")
    row = re.search(r"<tr[^>]*><th>LM calls</th>(.*?)</tr>", html, re.S)
    assert row is not None and f"{lm_calls:,}" in row.group(1)
    assert "<script>alert(1)</script>" not in html


def test_the_compare_page_of_two_short_trials_reads_them_whole_and_notes_nothing(ui):
    client, experiment, _, reads = ui
    a, b = experiment.trials[0], experiment.trials[2]
    html = client.get(f"/compare?a={experiment.id}:{a.id}&b={experiment.id}:{b.id}").text
    assert reads.whole == ["get_trial", "get_trial"]
    assert "were not read" not in html


def test_a_page_says_the_whole_trials_outcome_when_the_whole_experiment_is_cached(ui):
    client, experiment, trial, reads = ui
    handlers = next(
        r.endpoint.__self__ for r in client.app.routes if hasattr(r.endpoint, "__self__")
    )
    handlers.cache.versioned(experiment.id)  # as when another page read the whole record
    assert reads.whole == ["get_experiment"]
    html = client.get(f"/experiments/{experiment.id}/trials/{trial.id}").text
    assert 'Why this trial: <span class="badge outcome-rejected">rejected</span>' in html
    assert _ids_in(html) == _page_of(trial, 0, 399)[0]


def test_trace_viewer_compare_reads_a_long_trial_by_its_summary(recorded, monkeypatch):
    url, experiment = recorded
    monkeypatch.setattr("dspex.view.viewer.LONG_TRIAL", 1_000)
    store = ResultStore.open(url, read_only=True)
    reads = _Reads(store)
    trial = experiment.trials[LONG_TRIAL]
    view = TraceViewer.compare(experiment.id, 0, experiment.id, trial.index, store=store)
    assert reads.whole == ["get_trial"] and reads.events == []  # the short trial only
    note = f"B (Trial {trial.index}): its {EVENTS:,} events were not read"
    assert note in " ".join(str(view).split()) and note in view._repr_html_()
    lm_calls = sum(1 for e in trial.events if e.kind.value == "lm_call")
    assert [row.b for row in view.trials.costs if row.name == "LM calls"] == [lm_calls]
    store.close()
