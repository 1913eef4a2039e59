"""What the optimizer decided, where users look: each candidate's outcome (accepted,
rejected, skipped, no change) in the trial table, its filter, the lineage and the score
plot; the returned candidate and why, on the experiment's Outcome; scores with their scope.

A real GEPA run over the offline LM (rejected proposals, skipped iterations) and a recorded
SIMBA run (a rule that changed nothing)."""

from __future__ import annotations

import contextlib
import io
import re

import dspy
import pytest
from rich.console import Console

import dspex
from dspex.model.outcomes import Outcome, return_reason, returned_trial_id, trial_outcome
from dspex.offline import ArithQA, exact_match_with_feedback, load_arith
from dspex.view import ExperimentView
from dspex.view.html import experiment_html
from dspex.view.labels import trial_label
from tests.view.fixtures import fixture_files, load
from tests.view.htmltree import parse


@pytest.fixture(scope="module")
def gepa_run():
    train, dev = load_arith()
    lm = dspex.offline_lm()
    store = dspex.ResultStore.open("memory://")
    with dspy.context(lm=lm), contextlib.redirect_stderr(io.StringIO()):
        with dspex.experiment(
            "gepa outcomes", program=ArithQA(), program_name="qa", store=store
        ) as exp:
            dspy.GEPA(
                metric=exact_match_with_feedback,
                max_metric_calls=120,
                reflection_lm=lm,
                num_threads=2,
            ).compile(ArithQA(), trainset=train, valset=dev[:10])
    return store.get_experiment(exp.id)


@pytest.fixture(scope="module")
def simba_run():
    return load(next(p for p in fixture_files() if p.stem == "simba_demo_trimmed"))


def _by(experiment, **metadata):
    return [
        t for t in experiment.trials if all(t.metadata.get(k) == v for k, v in metadata.items())
    ]


def _url(trial):
    return f"/t/{trial.id}"


def test_gepa_outcomes_come_from_its_verdicts(gepa_run):
    rejected = _by(gepa_run, accepted=False)
    accepted = _by(gepa_run, accepted=True)
    skipped = [t for t in gepa_run.trials if t.metadata.get("skipped")]
    assert rejected and accepted and skipped  # the run exercises every GEPA outcome
    assert {trial_outcome(t) for t in rejected} == {Outcome.REJECTED}
    assert {trial_outcome(t) for t in accepted} == {Outcome.ACCEPTED}
    assert {trial_outcome(t) for t in skipped} == {Outcome.SKIPPED}
    evaluations = _by(gepa_run, role="validation")
    assert evaluations and {trial_outcome(t) for t in evaluations} == {None}


def test_the_trial_table_has_an_outcome_column_and_filter(gepa_run):
    doc = parse(experiment_html(gepa_run, trial_url=_url))
    table = doc.find("table", "trial-table")
    headers = [th.text().strip() for th in table.find("thead").find_all("th")]
    column = headers.index("outcome")
    rows = {tr.attrs["data-trial"]: tr for tr in table.find("tbody").find_all("tr")}
    for trial in gepa_run.trials:
        expected = trial_outcome(trial)
        row = rows[trial.id]
        assert row.attrs["data-outcome"] == (expected.value if expected else "")
        cell = row.find_all("td")[column].text()
        assert cell == (expected.value if expected else "–"), trial_label(trial)
    choices = doc.find("select", data_filter="outcome").find_all("option")
    assert [o.text() for o in choices] == ["any", "accepted", "rejected", "skipped"]


def test_the_lineage_and_the_plot_mark_outcomes(gepa_run):
    html = str(experiment_html(gepa_run, trial_url=_url))
    doc = parse(html)
    lineage = doc.find("section", "dspex-lineage")
    for trial in _by(gepa_run, accepted=False):
        link = lineage.find("a", href=_url(trial))
        item = next(a for a in link.ancestors() if a.tag == "li")
        assert "outcome-rejected" in item.classes
        assert "rejected" in item.text()
    plot = doc.find("section", "dspex-plot")
    rejected_points = [c for c in plot.find_all("circle") if c.attrs["data-outcome"] == "rejected"]
    assert {c.attrs["data-trial"] for c in rejected_points} == {
        t.id for t in _by(gepa_run, accepted=False)
    }
    for point in rejected_points:
        assert point.attrs["fill"] == "none"
        tip = re.search(f'data-trial="{point.attrs["data-trial"]}"[^>]*><title>([^<]*)', html)
        assert tip is not None and tip.group(1).endswith(" · rejected")


def test_text_markdown_and_terminal_name_each_outcome(gepa_run):
    view = ExperimentView(gepa_run)
    text, markdown = view.to_text(160), view.to_markdown()
    console = Console(width=200, record=True, color_system=None, file=io.StringIO())
    console.print(view)
    rich = console.export_text()
    for trial in _by(gepa_run, accepted=False):
        label = trial_label(trial)
        assert re.search(
            re.escape(label) + r" \(0\.3333 on minibatch \(n=\d+\)\).*\[rejected\]", text
        )
        assert re.search(re.escape(label) + r" .*\*\*rejected\*\*", markdown)
        assert re.search(re.escape(label) + r" .*\[rejected\]", rich)


def test_simba_rule_that_changed_nothing_is_no_change(simba_run):
    outcomes = {t.index: trial_outcome(t) for t in simba_run.trials}
    assert outcomes[6] is Outcome.NO_CHANGE  # append_a_rule returned False: skipped
    assert outcomes[4] is None and outcomes[17] is None  # changed the program: kept
    doc = parse(experiment_html(simba_run))
    row = doc.find("tr", data_trial=simba_run.trial(6).id)
    assert row.attrs["data-outcome"] == "no change"
    assert "no change" in ExperimentView(simba_run).to_text(120)


def test_the_outcome_section_says_what_was_returned_and_why(gepa_run, simba_run):
    for run, decision in ((gepa_run, "Return candidate "), (simba_run, "Return candidate 1")):
        reason = return_reason(run.trials)
        assert reason is not None and reason.decision.startswith(decision)
        returned = run.trial(returned_trial_id(run.trials))
        doc = parse(experiment_html(run, trial_url=_url))
        why = doc.find("section", "dspex-progress").find("p", "returned-why")
        assert why.find("a").attrs["href"] == _url(returned)
        assert f"Why: {reason.decision}: {reason.rationale}" in why.text()
        assert "returned" in doc.find("tr", data_trial=returned.id).find("td", "name").text()
        text = ExperimentView(run).to_text(200)
        assert f"why returned: {reason.decision}" in text
    gepa_reason = return_reason(gepa_run.trials)
    assert "Highest valset score" in gepa_reason.rationale
    # the link to the decision on record: the compile trial's page, at the event
    doc = parse(experiment_html(gepa_run, trial_url=_url))
    record = doc.find("p", "returned-why").find_all("a")[-1]
    assert record.attrs["href"] == f"/t/{gepa_reason.compile_trial_id}#{gepa_reason.event_id}"


def test_scores_carry_their_scope(gepa_run):
    doc = parse(experiment_html(gepa_run, trial_url=_url))
    table = doc.find("table", "trial-table")
    for trial in gepa_run.trials:
        if trial.score is None or trial.score_scope is None:
            continue
        cell = table.find("tr", data_trial=trial.id).find("td", data_value=str(trial.score))
        scope = trial.score_scope
        assert cell.attrs["title"].endswith(f" on {scope.name} (n={scope.n})")
    text = ExperimentView(gepa_run).to_text(200)
    assert re.search(r"candidate \d \(1 on minibatch \(n=\d+\)\)", text)
    assert re.search(r"valset evaluation .*|Trial \d+ \(1 on full \(n=10\)\)", text)


def test_the_cli_trial_table_and_summary_show_outcome_and_why(gepa_run):
    from dspex.cli._tables import experiment_summary_text

    text = experiment_summary_text(gepa_run, width=200)
    reason = return_reason(gepa_run.trials)
    flat = " ".join(text.split())
    assert " ".join(f"why returned: {reason.decision}: {reason.rationale}".split()) in flat
    header = next(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert "OUTCOME" in header
    for trial in _by(gepa_run, accepted=False):
        row = next(line for line in text.splitlines() if trial.id in line)
        assert " rejected " in row
    returned = gepa_run.trial(reason.trial_id)
    row = next(line for line in text.splitlines() if line.rstrip().endswith(returned.id))
    assert "accepted, returned" in row


# -- the trial page leads with the why -------------------------------------------------


def test_the_trial_page_leads_with_the_decision_and_the_change(gepa_run):
    from dspex.view.html import trial_html

    trial = _by(gepa_run, accepted=False)[0]
    doc = parse(trial_html(gepa_run, trial, trial_url=_url))
    root = doc.find("div", "dspex-trial")
    order = [next(iter(s.classes)) for s in root.find_all("section")]
    assert order.index("dspex-why") < order.index("dspex-diff") < order.index("dspex-time")
    why = root.find("section", "dspex-why")
    assert why.find("h3").text() == "Why this trial: rejected"
    verdict = why.find("li", "verdict")
    assert verdict.find("b").text() == f"Iteration {trial.metadata['iteration']} proposal rejected"
    # each decision links to its event in the timeline, which holds it
    for item in why.find_all("li", "decision"):
        target = item.find("a", "to-event").attrs["href"]
        assert root.find(id=target[1:]) is not None
    # the parent candidate a decision names is a link to its page
    parent = gepa_run.trial(trial.parent_trial_ids[0])
    assert _url(parent) in [a.attrs["href"] for a in why.find_all("a")]
    # the verdict once per page: the timeline's entry points up to it
    assert str(trial_html(gepa_run, trial)).count(verdict.find("b").text()) == 1
    entry = root.find(id=verdict.find("a", "to-event").attrs["href"][1:])
    assert entry.find("a", href="#why") is not None
    from dspex.view import TrialView

    text = TrialView(gepa_run, trial).to_text(400)
    assert text.count(verdict.find("b").text()) == 1
    assert text.index("Why this trial: rejected") < text.index("Changes against parent")


def test_the_returned_candidates_page_says_why(gepa_run):
    from dspex.view import TrialView
    from dspex.view.html import trial_html

    reason = return_reason(gepa_run.trials)
    returned = gepa_run.trial(reason.trial_id)
    doc = parse(trial_html(gepa_run, returned, trial_url=_url))
    why = doc.find("section", "dspex-why").find("p", "returned-why")
    assert f"Why: {reason.decision}: {reason.rationale}" in why.text()
    record = why.find_all("a")[-1].attrs["href"]
    assert record == f"/t/{reason.compile_trial_id}#{reason.event_id}"
    text = TrialView(gepa_run, returned).to_text(400)
    assert f"returned by the compile. Why: {reason.decision}" in text
    other = next(t for t in _by(gepa_run, accepted=True) if t.id != returned.id)
    assert not parse(trial_html(gepa_run, other)).find_all("p", "returned-why")


def test_the_web_trial_page_has_the_why_and_scrolls_to_an_asked_event(gepa_run):
    from dspex.view.web import create_app
    from tests.view.conftest import make_client

    store = dspex.ResultStore.open("memory://")
    store.archive_experiment(gepa_run)
    client = make_client(create_app(store))
    trial = _by(gepa_run, accepted=False)[0]
    page = client.get(f"/experiments/{gepa_run.id}/trials/{trial.id}")
    doc = parse(page.text)
    parent = gepa_run.trial(trial.parent_trial_ids[0])
    links = [a.attrs["href"] for a in doc.find("section", "dspex-why").find_all("a")]
    assert f"/experiments/{gepa_run.id}/trials/{parent.id}" in links
    script = doc.find_all("script")[-1].text()
    assert 'params().get("event")' in script and "reveal(asked)" in script


# -- the trials export carries the same facts ------------------------------------------


def test_trial_rows_say_what_the_views_say(gepa_run, simba_run, tmp_path):
    from dspex.analysis.export import export_experiment
    from dspex.model.rows import trial_rows
    from dspex.view.overview import build_overview

    for run in (gepa_run, simba_run):
        rows = {r["trial_id"]: r for r in trial_rows(run)}
        for view_row in build_overview(run).rows:
            row = rows[view_row.trial.id]
            assert row["strategy"] == view_row.strategy
            assert row["outcome"] == (view_row.outcome.value if view_row.outcome else None)
            assert row["returned"] is view_row.returned
            assert row["candidate"] == view_row.trial.metadata.get("candidate")
    rows = trial_rows(gepa_run)
    assert sum(r["returned"] for r in rows) == 1
    assert {r["outcome"] for r in rows} == {None, "accepted", "rejected", "skipped"}
    proposals = [r for r in rows if r["name"].startswith("iteration")]
    assert proposals and all(isinstance(r["step"], int) for r in proposals)
    assert {r["strategy"] for r in rows if r["outcome"] == "rejected"} == {"reflective_mutation"}

    import pyarrow.parquet as pq

    (path, _) = export_experiment(gepa_run, tmp_path, "parquet")
    table = pq.read_table(path)
    for column in ("started_at", "finished_at"):
        kind = table.schema.field(column).type
        assert str(kind) == "timestamp[us, tz=UTC]", (column, kind)
    first = table.column("started_at")[0].as_py()
    assert first == gepa_run.trials[0].started_at
    assert table.column("outcome").to_pylist() == [r["outcome"] for r in rows]


def test_the_examples_export_names_workers_as_the_trial_view_does():
    """DSPy's Evaluate records an example's result on another thread than the one its
    program ran on: the export names the run's worker, as the trial view's example runs do."""
    from dspex.model.rows import example_rows
    from dspex.offline import exact_match
    from dspex.view.runs import segments
    from dspex.view.timeline import build_timeline

    _, dev = load_arith()
    store = dspex.ResultStore.open("memory://")
    with dspy.context(lm=dspex.offline_lm()), contextlib.redirect_stderr(io.StringIO()):
        with dspex.experiment("workers", program=ArithQA(), store=store) as exp:
            dspy.Evaluate(devset=dev[:12], metric=exact_match, num_threads=4)(ArithQA())
    run = store.get_experiment(exp.id)
    (trial,) = run.trials
    shown = {}
    for segment in segments(list(build_timeline(trial, run).blocks)):
        for example in getattr(segment, "runs", ()):
            shown[int(example.example)] = example.worker
    assert len(shown) == 12
    exported = {r["example_index"]: r["worker"] for r in example_rows(run)}
    assert exported == shown
    assert all(w.startswith("ThreadPoolExecutor") for w in exported.values())
