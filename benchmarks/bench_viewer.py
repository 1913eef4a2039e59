"""How fast the viewers show a large trial recorded from a real run.

A trial of ~2,400 events is recorded with the offline LM (the ArithQA program over 300
examples), archived in a file store, then shown: the web UI's first view (fresh app,
record not yet parsed) and later views, as the app's own Server-Timing reports, plus
``store.get_trial``, the notebook HTML and the abridged text, the experiment's JSON
(``/api/experiments/{id}``, cached per version like the HTML page) and the size of a
notebook output. Target: a trial page of 2,000+ events under 200 ms of server time.
Prints a table of medians.

    python -m benchmarks viewer            # DSPEX_BENCH_SCALE=0.2 for a quick run
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

EXAMPLES = 300
REPEATS = 7


def _record(store_url: str, examples: int) -> tuple[str, str]:
    import dspy

    import dspex
    from dspex.offline import ArithQA, exact_match, load_arith

    train, dev = load_arith()
    data = [(train + dev)[i % 52] for i in range(examples)]
    store = dspex.ResultStore.open(store_url)
    with dspy.context(lm=dspex.offline_lm()):
        with dspex.experiment("viewer bench", program_name="qa", store=store, pool_size=2) as exp:
            trial = exp.evaluate(ArithQA(), data, exact_match, name="large")
    return exp.id, trial.id


def _client(store_url: str) -> Any:
    from dspex import ResultStore
    from dspex.view.web import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient
    return TestClient(create_app(ResultStore.open(store_url)), base_url="http://127.0.0.1")


def _server_ms(response: Any) -> float:
    timing = response.headers["server-timing"]  # "app;dur=12.3"
    return float(timing.split("dur=")[1])


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    scale = float(os.environ.get("DSPEX_BENCH_SCALE", "1"))
    examples = max(20, int(EXAMPLES * scale))
    from dspex import ResultStore, TraceViewer
    from dspex.view import render_trial_text

    with tempfile.TemporaryDirectory() as root:
        url = f"file://{root}/store"
        experiment_id, trial_id = _record(url, examples)
        store = ResultStore.open(url)
        trial = store.get_trial(experiment_id, trial_id)
        page = f"/experiments/{experiment_id}/trials/{trial_id}"

        first = []
        for _ in range(REPEATS):
            first.append(_server_ms(_client(url).get(page)))
        client = _client(url)
        client.get(page)
        later = [_server_ms(client.get(page)) for _ in range(REPEATS)]
        second_page = [_server_ms(client.get(page + "?offset=400")) for _ in range(REPEATS)]

        api = f"/api/experiments/{experiment_id}"
        api_first = [_server_ms(_client(url).get(api)) for _ in range(REPEATS)]
        api_later = [_server_ms(client.get(api)) for _ in range(REPEATS)]
        overview = f"/experiments/{experiment_id}"
        client.get(overview)
        overview_later = [_server_ms(client.get(overview)) for _ in range(REPEATS)]
        view = TraceViewer.view_trial(experiment_id, trial_id, store=store)
        bundle = view._repr_mimebundle_()
        notebook_kb = sum(len(v.encode()) for v in bundle.values()) / 1024

        experiment = store.get_experiment(experiment_id)
        rows = [
            (
                "store.get_trial (file store, parse)",
                _median_ms(lambda: store.get_trial(experiment_id, trial_id), REPEATS),
            ),
            ("web trial page, first view (server)", statistics.median(first)),
            ("web trial page, later views (server)", statistics.median(later)),
            ("web trial page, second page (server)", statistics.median(second_page)),
            (
                "notebook HTML, whole trial",
                _median_ms(
                    lambda: TraceViewer.view_trial(
                        experiment_id, trial_id, store=store
                    )._repr_html_(),
                    3,
                ),
            ),
            (
                "abridged text",
                _median_ms(lambda: render_trial_text(experiment, trial), REPEATS),
            ),
            ("experiment JSON API, first call (server)", statistics.median(api_first)),
            ("experiment JSON API, later calls (server)", statistics.median(api_later)),
            ("web experiment page, later views (server)", statistics.median(overview_later)),
        ]
    print(f"trial of {len(trial.events)} events ({examples} examples), medians of {REPEATS}")
    print(f"{'what':<40} {'ms':>8}")
    for name, ms in rows:
        print(f"{name:<40} {ms:>8.1f}")
    print(f"notebook output of the trial: {notebook_kb:,.0f} KB ({', '.join(sorted(bundle))})")
    print("target: a 2,000+ event trial page under 200 ms of server time")
    _long_response(max(1_000_000, int(10_000_000 * scale)))


def _long_response(size: int) -> None:
    """Every view of one LM call whose response is ``size`` characters (one word, words,
    short lines): folded before it is wrapped, so each view takes linear time."""
    import io
    from datetime import UTC, datetime

    from rich.console import Console

    from dspex import Experiment, ProgramInfo, TraceEvent, Trial, new_id
    from dspex.view import TrialView, render_trial_text

    shapes = {
        "one word": "x" * size,
        "words": ("lorem ipsum dolor " * (size // 18 + 1))[:size],
        "lines": ("a line of text of about eighty characters, as LM answers come\n"
                  * (size // 62 + 1))[:size],
    }  # fmt: skip
    print(f"\none LM response of {size / 1e6:.0f} MB, seconds (one run each)")
    print(f"{'view':<32}" + "".join(f"{shape:>10}" for shape in shapes))
    views: dict[str, list[float]] = {}
    for text in shapes.values():
        experiment_id, trial_id, start = new_id("exp"), new_id("trl"), datetime.now(UTC)
        event = TraceEvent(
            trial_id=trial_id, sequence=0, timestamp=start, monotonic_ns=0,
            source="execution", kind="lm_call", pid=1, worker="main",
            payload={"model": "m", "messages": [{"role": "user", "content": "q"}],
                     "response": text},
        )  # fmt: skip
        trial = Trial(id=trial_id, experiment_id=experiment_id, index=0, started_at=start,
                      events=(event,))  # fmt: skip
        experiment = Experiment(id=experiment_id, name="long", program=ProgramInfo(name="qa"),
                                trials=(trial,))  # fmt: skip
        view = TrialView(experiment, trial)
        for name, show in (
            ("notebook (_repr_mimebundle_)", view._repr_mimebundle_),
            ("plain text, full", view.to_text),
            ("plain text, abridged", lambda v=view: v.to_text(abridged=True)),
            ("experiments show --trial", lambda e=experiment, t=trial: render_trial_text(e, t)),
            ("Markdown", view.to_markdown),
            ("HTML", view.to_html),
            ("rich (terminal)", lambda v=view: Console(file=io.StringIO(), width=100).print(v)),
        ):
            started = time.perf_counter()
            show()
            views.setdefault(name, []).append(time.perf_counter() - started)
    for name, seconds in views.items():
        print(f"{name:<32}" + "".join(f"{s:>10.2f}" for s in seconds))
    print("target: every view of a 10 MB event within a second")


if __name__ == "__main__":
    main()
