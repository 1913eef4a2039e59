"""How fast the viewers show a large trial recorded from a real run.

A trial of ~2,400 events is recorded with the offline LM (the ArithQA program over 300
examples), archived in a file store, then shown: the web UI's first view (fresh app,
record not yet parsed) and later views, as the app's own Server-Timing reports, plus
``store.get_trial``, the notebook HTML and the abridged text, the experiment's JSON
(``/api/experiments/{id}``, cached per version like the HTML page) and the size of a
notebook output. Target: a trial page of 2,000+ events under 200 ms of server time.
Prints a table of medians.

    python -m benchmarks viewer            # DSPEX_BENCH_SCALE=0.2 for a quick run
    python -m benchmarks.bench_viewer --long   # only the 200,000-event trial's rows

It ends with the cold first view of a 200,000-event trial (times the scale), read a page
at a time: in ``dspex ui`` and by ``view_trial`` (notebook HTML and text), each in a
fresh process, with its peak RSS.
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
    long_trial_rows(max(20_001, int(LONG_EVENTS * scale)))


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


# -- a 200,000-event trial: the first view, cold, each in a fresh process --------------------

LONG_EVENTS = 200_000


def long_experiment(events: int) -> Any:
    """A finished experiment whose second trial has ``events`` events shaped like an
    evaluation's (per example: a module call with its LM call, its end and the result;
    every 50 examples an optimizer decision), and a short baseline trial before it."""
    from datetime import UTC, datetime, timedelta

    from dspex import Experiment, ProgramInfo, Trial, new_id
    from dspex.model.event import trusted_event

    experiment = Experiment(name="long trial", program=ProgramInfo(name="qa"),
                            status="completed")  # fmt: skip
    start = datetime(2026, 1, 1, tzinfo=UTC)
    baseline = Trial(experiment_id=experiment.id, index=0, started_at=start, score=0.5)
    trial_id = new_id("trl")
    made: list[Any] = []

    def add(kind: str, source: str, payload: dict[str, Any], parent: str | None = None) -> str:
        sequence = len(made)
        event_id = new_id("evt")
        made.append(
            trusted_event(
                id=event_id, trial_id=trial_id, parent_id=parent, sequence=sequence,
                timestamp=start + timedelta(milliseconds=sequence), monotonic_ns=sequence,
                source=source, kind=kind, pid=1, worker=f"w{sequence // 4 % 2}",
                payload=payload,
            )
        )  # fmt: skip
        return event_id

    example = 0
    while len(made) < events:
        if example % 50 == 0:
            add("decision", "orchestration", {
                "optimizer": "SIMBA", "step": example // 50, "decision": "Keep candidate 0",
                "rationale": "a <b>rationale</b> with markup", "action": "", "details": {},
            })  # fmt: skip
        question = f"What is {example} + 30? " + "Show your work. " * 20
        module = add("module_start", "execution", {
            "module": "qa.predict", "class": "dspy.Predict", "signature": "question -> answer",
            "inputs": {"question": question},
        })  # fmt: skip
        add("lm_call", "execution", {
            "model": "offline/arith",
            "messages": [{"role": "system", "content": "Answer the question. " * 10},
                         {"role": "user", "content": question}],
            "response": f"[[ ## answer ## ]]\n{example + 30}", "latency_ms": 1.5,
            "usage": {"prompt_tokens": 120, "completion_tokens": 4, "total_tokens": 124},
            "cache_hit": example % 3 == 0, "settings": {"temperature": 0.0},
        }, module)  # fmt: skip
        add("module_end", "execution", {
            "module": "qa.predict", "class": "dspy.Predict",
            "outputs": {"answer": str(example + 30)}, "error": None, "latency_ms": 2.0,
            "start_id": module,
        })  # fmt: skip
        add("example_result", "evaluation", {
            "example": example, "inputs": {"question": question},
            "labels": {"answer": str(example + 30)}, "prediction": {"answer": str(example + 30)},
            "metric": "accuracy", "value": 1.0, "passed": True, "latency_ms": 3.0,
            "error": None,
        })  # fmt: skip
        example += 1
    trial = Trial(id=trial_id, experiment_id=experiment.id, index=1, started_at=start,
                  score=1.0, events=tuple(made[:events]))  # fmt: skip
    return experiment.replace(trials=(baseline, trial))


def _child(mode: str, url: str, experiment_id: str, trial_id: str) -> None:
    """One cold first view in this (fresh) process; prints its numbers as JSON."""
    import json
    import resource

    from dspex import ResultStore, TraceViewer

    store = ResultStore.open(url, read_only=True)
    wall, cpu = time.perf_counter(), time.process_time()
    server = None
    if mode == "ui":
        response = _client(url).get(f"/experiments/{experiment_id}/trials/{trial_id}")
        assert response.status_code == 200, response.text[:300]
        server = _server_ms(response)
        size = len(response.content)
    else:
        view = TraceViewer.view_trial(experiment_id, trial_id, store=store)
        size = len(view.to_text() if mode == "text" else view._repr_html_())
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec (the parent's size at fork)
    usage = _peak_mb()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    wall_ms, cpu_ms = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
    print(json.dumps({
        "wall_ms": wall_ms, "cpu_ms": cpu_ms, "server_ms": server, "peak_mb": usage,
        "child_peak_mb": children, "bytes": size,
    }))  # fmt: skip


def _peak_mb() -> float:
    """This process's peak resident size (VmHWM), in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def long_trial_rows(events: int = LONG_EVENTS) -> list[tuple[str, dict[str, Any]]]:
    """The cold first view of an ``events``-event trial: in ``dspex ui`` (a fresh app in a
    fresh process: server time, CPU time, peak RSS of the process and of any worker it
    ran) and by ``TraceViewer.view_trial`` shown as notebook HTML and as text."""
    import gc
    import json
    import subprocess
    import sys

    from dspex import ResultStore

    rows = []
    with tempfile.TemporaryDirectory() as root:
        url = f"file://{root}/store"
        experiment = long_experiment(events)
        ResultStore.open(url).archive_experiment(experiment)
        experiment_id, trial_id = experiment.id, experiment.trials[1].id
        short_id = experiment.trials[0].id
        del experiment
        gc.collect()
        for mode, what, viewed in (
            ("ui", "dspex ui trial page, first view", trial_id),
            ("html", "view_trial, notebook HTML", trial_id),
            ("text", "view_trial, text", trial_id),
            ("ui", "dspex ui, a short trial beside it", short_id),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_viewer", "--child", mode, url,
                 experiment_id, viewed],
                capture_output=True, text=True, timeout=1800, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                rows.append((what, {"error": done.stderr.strip()[-300:]}))
                continue
            rows.append((what, json.loads(done.stdout.strip().splitlines()[-1])))
    print(f"\ncold first view of a trial of {events:,} events (file store), a fresh process each")
    print(f"{'view':<36}{'wall ms':>10}{'server ms':>11}{'CPU ms':>9}{'peak MB':>9}"
          f"{'worker MB':>11}{'KB':>9}")  # fmt: skip
    for what, row in rows:
        if "error" in row:
            print(f"{what:<36} failed: {row['error']}")
            continue
        server = "" if row["server_ms"] is None else f"{row['server_ms']:.0f}"
        print(
            f"{what:<36}{row['wall_ms']:>10.0f}{server:>11}{row['cpu_ms']:>9.0f}"
            f"{row['peak_mb']:>9.0f}{row['child_peak_mb']:>11.0f}{row['bytes'] / 1024:>9.0f}"
        )
    print("target: the first view well under 2 s, memory independent of the trial's length")
    return rows


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--child"]:
        _child(*sys.argv[2:6])
    elif "--long" in sys.argv[1:]:
        long_trial_rows()
    else:
        main()
