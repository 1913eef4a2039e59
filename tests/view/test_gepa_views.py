"""A recorded GEPA run in the views: the reflection in the trial view, the Pareto front
in the experiment view (text, Markdown, rich and HTML)."""

from __future__ import annotations

import contextlib
import io

import dspy
import pytest
from rich.console import Console

import dspex
from dspex.offline import ArithQA, exact_match_with_feedback, load_arith
from dspex.view import ExperimentView, TrialView
from dspex.view.html import experiment_html
from dspex.view.labels import trial_label
from dspex.view.pareto import pareto_front
from tests.view.htmltree import parse


@pytest.fixture(scope="module")
def gepa_run():
    train, dev = load_arith()
    lm = dspex.offline_lm()
    store = dspex.ResultStore.open("memory://")
    with dspy.context(lm=lm), contextlib.redirect_stderr(io.StringIO()):
        with dspex.experiment(
            "gepa <view>", program=ArithQA(), program_name="qa", store=store
        ) as exp:
            dspy.GEPA(
                metric=exact_match_with_feedback,
                max_metric_calls=120,
                reflection_lm=lm,
                num_threads=2,
            ).compile(ArithQA(), trainset=train, valset=dev[:10])
    return store.get_experiment(exp.id)


def _accepted(experiment):
    return next(
        t
        for t in experiment.trials
        if t.metadata.get("accepted") is True and t.metadata.get("candidate", 0) > 0
    )


def test_the_trial_view_reads_proposal_reflection_minibatch_and_verdict(gepa_run):
    trial = _accepted(gepa_run)
    text = TrialView(gepa_run, trial).to_text(100)
    order = [
        "Decision: Propose a new candidate from candidate ",
        "Decision: Reflect on candidate ",
        "Incorrect: the expected answer is",
        "LM call · Predict(ProposeInstruction)",
        "Decision: New instruction for qa.predict",
        f"Candidate created: iteration {trial.metadata['iteration']} proposal",
        "Candidate scored",
        "Decision: the verdict, above",  # the verdict is shown once, under the why
    ]
    verdict = f"Iteration {trial.metadata['iteration']} proposal accepted"
    assert text.count(verdict) == 1 and text.index(verdict) < text.index(order[0])
    assert text.startswith(trial_label(trial)) and "Why this trial: accepted" in text
    positions = [text.find(marker) for marker in order]
    assert -1 not in positions and positions == sorted(positions), list(
        zip(order, positions, strict=True)
    )
    instruction = trial.variables.predictors["qa.predict"].instructions
    assert instruction.split(". ")[-1].strip()[:60] in " ".join(text.split())


def test_the_experiment_view_shows_the_pareto_front(gepa_run):
    front = pareto_front(gepa_run)
    assert front is not None and front.optimizer == "GEPA"
    compile_trial = next(t for t in gepa_run.trials if t.metadata.get("role") == "compile")
    end = next(e for e in compile_trial.events if e.kind.value == "optimizer_end").payload
    assert [m.trial.id for m in front.members] == end["pareto_front"]
    assert all(m.best_on and m.best_on <= 10 for m in front.members)
    lines = [
        f"Trial {m.trial.index} {m.trial.name}  valset {m.score:g}  best on {m.best_on} of 10"
        for m in front.members
    ]
    text = ExperimentView(gepa_run).to_text(100)
    assert f"Pareto front (GEPA, {front.updates} update(s))" in text
    assert all(line in text for line in lines)
    markdown = ExperimentView(gepa_run).to_markdown()
    assert "## Pareto front (GEPA" in markdown
    console = Console(width=120, record=True, color_system=None, file=io.StringIO())
    console.print(ExperimentView(gepa_run))
    rich_text = console.export_text()
    assert all(line in rich_text for line in lines)


def test_the_html_experiment_view_links_the_front_and_escapes(gepa_run):
    front = pareto_front(gepa_run)
    html = str(experiment_html(gepa_run, trial_url=lambda t: f"/trial/{t.id}"))
    assert "gepa &lt;view&gt;" in html and "gepa <view>" not in html
    tree = parse(html)
    section = tree.find("section", cls="dspex-pareto")
    links = [a.attrs["href"] for a in section.find_all("a")]
    assert links[: len(front.members)] == [f"/trial/{m.trial.id}" for m in front.members]
