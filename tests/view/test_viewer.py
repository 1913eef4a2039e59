"""TraceViewer over a store: what it returns, and what it says about unknown ids."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import dspex
from dspex import ExperimentView, ResultStore, TraceViewer, TrialView, new_id
from dspex.view.labels import find_trial
from tests.view.fixtures import DATA_DIR, load


def test_view_experiment_and_trial_from_a_given_store(store, simba):
    view = TraceViewer.view_experiment(simba.id, store=store)
    assert isinstance(view, ExperimentView) and view.experiment == simba
    trial = TraceViewer.view_trial(simba.id, simba.trials[2].id, store=store)
    assert isinstance(trial, TrialView)
    assert trial.timeline.title == "Trial 2 · candidate 2 · 1 on full (n=6)"
    assert trial.timeline.parent == simba.trials[1]  # found through the experiment


def test_the_configured_store_is_the_default(simba):
    dspex.configure(store={"backend": "memory"})
    ResultStore.default().archive_experiment(simba)
    assert TraceViewer.view_trial(simba.id, simba.trials[0].id).trial == simba.trials[0]


def test_unknown_ids_raise_errors_that_name_them(store, simba):
    missing_exp, missing_trl = new_id("exp"), new_id("trl")
    with pytest.raises(dspex.ExperimentNotFound, match=missing_exp):
        TraceViewer.view_experiment(missing_exp, store=store)
    with pytest.raises(dspex.ExperimentNotFound, match=missing_exp):
        TraceViewer.view_trial(missing_exp, missing_trl, store=store)
    with pytest.raises(dspex.TrialNotFound) as raised:
        TraceViewer.view_trial(simba.id, missing_trl, store=store)
    assert str(raised.value).startswith(
        f"no trial with id {missing_trl!r} in experiment {simba.id}: give a row number (0–3)"
    )
    with pytest.raises(dspex.InvalidIdError, match="'trial-7' is not a dspex id"):
        TraceViewer.view_trial(simba.id, "trial-7", store=store)


def test_views_offer_every_representation(simba):
    view = TrialView(simba, simba.trials[1])
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    assert bundle["text/html"] == view._repr_html_()
    assert bundle["text/plain"].startswith("Trial 1 · candidate 1 · 0.8333 on full (n=6)")
    assert len(bundle["text/plain"].splitlines()) <= 4  # a fallback, not a second copy
    # Jupyter stores every format an object offers: HTML and the short text, nothing more.
    assert not hasattr(view, "_repr_markdown_") and not hasattr(view, "_repr_latex_")
    assert view.to_markdown().startswith(
        "# Unified Trace: Trial 1 · candidate 1 · 0.8333 on full (n=6)"
    )
    assert str(view) == view.to_text(100)
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    console.print(view)
    assert "Trial 1 · candidate 1 · 0.8333 on full (n=6)" in console.export_text()
    experiment = ExperimentView(simba)
    bundle = experiment._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"} and len(bundle["text/plain"]) < 300
    assert not hasattr(experiment, "_repr_markdown_")
    assert experiment.to_markdown().startswith("# Experiment simba")


def test_trial_view_filters_and_trial_lookup(simba):
    experiment = ExperimentView(simba)
    assert experiment.trial(3).trial == simba.trials[3]
    assert experiment.trial(simba.trials[3].id).trial == simba.trials[3]
    with pytest.raises(dspex.TrialNotFound):
        experiment.trial(99)
    view = experiment.trial(1).filter(sources=["orchestration"])
    assert {e.source for e in view.timeline.entries} == {"orchestration"}
    assert "── Execution" not in str(view)
    assert "lm-call" not in view.to_html()


def test_a_trial_without_events_says_so(simba):
    bare = simba.trials[0].replace(events=())
    experiment = simba.replace(trials=(bare, *simba.trials[1:]))
    view = TrialView(experiment, bare)
    assert "(no events were recorded for this trial)" in view.to_text()
    assert "No events were recorded for this trial." in view.to_html()
    filtered = TrialView(simba, simba.trials[0]).filter(text="nothing matches this")
    assert "(no events match these filters)" in filtered.to_text()
    assert "No events match these filters." in filtered.to_html()


def test_the_notebook_view_takes_the_same_references():
    demo = load(DATA_DIR / "simba_demo_trimmed.json")
    view = ExperimentView(demo)
    assert view.trial(4).trial == view.trial("c1").trial == demo.trials[3]
    with pytest.raises(dspex.TrialNotFound, match="rows run 0–17"):
        view.trial(99)
    assert find_trial(demo, "#17") == demo.trials[-1]
