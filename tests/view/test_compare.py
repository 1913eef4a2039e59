"""Two trials or two experiments side by side: text, rich, HTML, the CLI and /compare."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner
from rich.console import Console

import dspex
from dspex import NotComparableError, ResultStore, TraceViewer, TrialNotFound
from dspex.cli import main
from dspex.view.comparison import experiments_side_by_side, trials_side_by_side
from dspex.view.comparison_html import comparison_html
from dspex.view.comparison_text import trials_text
from dspex.view.web import create_app
from tests.model.scored import demo_like
from tests.view.conftest import make_client
from tests.view.fixtures import XSS
from tests.view.htmltree import parse


@pytest.fixture
def two(simba):
    """A store holding the SIMBA fixture and a demo-shaped experiment (no shared examples)."""
    store = ResultStore.open("memory://")
    other = demo_like()
    store.archive_experiment(simba)
    store.archive_experiment(other)
    return store, simba, other


def test_text_puts_statistics_changes_costs_and_flips_first(simba):
    view = trials_side_by_side(simba, simba.trials[0], simba, simba.trials[2])
    text = trials_text(view, width=100)
    assert "difference (B - A): +0.333" in text and "exact McNemar, p = 0.5" in text
    assert "qa.predict.demos: 0 -> 1 demo(s)" in text and "lm.temperature" not in text
    assert "tokens" in text and "latency p95" in text
    examples = [line for line in text.split("── Examples")[1].splitlines() if "] #" in line]
    assert [line.split("]")[0] for line in examples] == ["  [B better"] * 2 + ["  [same"] * 4
    assert all(len(line) <= 100 for line in text.splitlines())


def test_trials_on_different_examples_say_why_and_still_show_the_rest(two):
    store, simba, other = two
    view = TraceViewer.compare(simba.id, 0, other.id, 3, store=store)
    assert view.comparison is None
    text = str(view)
    assert "not comparable" in text and "different example sets" in text
    assert "── Examples" not in text and "── Cost and time" in text
    assert "not comparable" in repr(view)


def test_html_escapes_every_string_from_data(simba):
    view = trials_side_by_side(simba, simba.trials[0], simba, simba.trials[3])
    html = str(comparison_html(view))
    for attack in XSS:
        assert attack not in html
    doc = parse(html)
    assert XSS[1] in doc.find("table", "examples").text()
    rows = doc.find("table", "examples").find("tbody").find_all("tr")
    assert rows[0].attrs["data-outcome"] != "tie"


def test_rich_output_keeps_data_as_text(simba):
    renamed = simba.replace(trials=(simba.trials[0].replace(name="[red]bold"), *simba.trials[1:]))
    view = trials_side_by_side(renamed, renamed.trials[0], renamed, renamed.trials[2])
    console = Console(width=120, record=True, color_system=None, file=io.StringIO())
    console.print(dspex.view.ComparisonView(view))
    out = console.export_text()
    assert "[red]bold" in out and "Examples, those that differ first" in out


def test_two_experiments_compare_best_trials_and_settings(two, simba):
    store, _, other = two
    data = simba.to_dict()  # the same run again, with another optimizer setting
    data["id"] = dspex.new_id("exp")
    data["optimizer"]["settings"]["max_steps"] = 8
    for trial in data["trials"]:
        trial["experiment_id"] = data["id"]
    tuned = dspex.Experiment.from_dict(data)
    store.archive_experiment(tuned)
    view = TraceViewer.compare(simba.id, experiment_b=tuned.id, store=store)
    text = view.to_text()
    assert "optimizer.settings.max_steps: 3  ->  8" in text
    assert "Best trials on the shared set, full (n=6)" in text
    assert view.comparison is not None and view.comparison.n == 6
    html = parse(view.to_html())
    assert (
        html.find("table", "settings-diff")
        .find("tbody")
        .find_all("tr")[0]
        .text()
        .startswith("optimizer.settings.max_steps")
    )
    unrelated = experiments_side_by_side(simba, other)
    assert unrelated.trials is None and "no trial on the same examples" in unrelated.not_comparable


def test_compare_names_what_is_missing(two):
    store, simba, _ = two
    with pytest.raises(dspex.ValidationError, match="both trials"):
        TraceViewer.compare(simba.id, 0, simba.id, store=store)
    with pytest.raises(dspex.ValidationError, match="two trials"):
        TraceViewer.compare(simba.id, store=store)
    with pytest.raises(TrialNotFound, match="no trial #9 .*rows run 0–3"):
        TraceViewer.compare(simba.id, 0, simba.id, 9, store=store)
    with pytest.raises(NotComparableError):
        dspex.compare(simba.trials[0], demo_like().trials[0])


def test_cli_compares_trials_and_experiments(tmp_path, simba):
    url = f"file://{tmp_path / 'store'}"
    store = ResultStore.open(url).connect()
    store.archive_experiment(simba)
    other = demo_like()
    store.archive_experiment(other)
    run = CliRunner().invoke
    result = run(main, ["compare", f"{simba.id}:0", f"{simba.id}:{simba.trials[2].id}",
                        "--store", url, "--width", "90"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "B better on 2, A better on 0, same on 4" in result.output
    assert all(len(line) <= 90 for line in result.output.splitlines())
    result = run(main, ["compare", simba.id, other.id, "--store", url])
    assert result.exit_code == 0 and "scored no trial on the same examples" in result.output
    result = run(main, ["compare", f"{simba.id}:0", other.id, "--store", url])
    assert result.exit_code == 2 and "two trials (EXP:TRIAL EXP:TRIAL)" in result.output
    result = run(main, ["compare", f"{simba.id}:0", f"{simba.id}:42", "--store", url])
    assert (
        result.exit_code == 1
        and "no trial #42" in result.output
        and "rows run 0–3" in result.output
    )


def test_web_compare_page_answers_pickers_comparisons_and_errors(two):
    store, simba, other = two
    client = make_client(create_app(store))
    picker = parse(client.get("/compare").text)
    assert len(picker.find_all("fieldset", "pick")) == 2
    assert len(picker.find("fieldset", "pick").find_all("tr", None)) >= 2
    one_side = parse(client.get(f"/compare?a={simba.id}:0").text)
    trials_a = one_side.find_all("table", "pick-trials")
    assert len(trials_a) == 1 and len(one_side.find_all("table", "pick-experiments")) == 1
    page = client.get(f"/compare?a={simba.id}:0&b={simba.id}:2")
    assert page.status_code == 200 and XSS[0] not in page.text
    assert "B better on 2" in parse(page.text).find("section", "dspex-statistics").text()
    experiments = client.get(f"/compare?a={simba.id}&b={other.id}")
    assert experiments.status_code == 200 and "no trial on the same examples" in experiments.text
    assert client.get("/compare?a=nope").status_code == 400
    assert client.get(f"/compare?a={simba.id}:7&b={simba.id}:1").status_code == 404
    assert client.get(f"/compare?a={dspex.new_id('exp')}").status_code == 404
