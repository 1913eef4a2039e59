"""One trial numbering on every surface: the CLI, the web routes, the JSON API and
`Experiment.trial` accept a row number, a candidate number (c8) or a trial id."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from dspex import ResultStore, TrialNotFound
from dspex.cli import main
from dspex.model.trialref import candidate_number
from dspex.view.web import create_app
from tests.view.fixtures import simba_experiment


@pytest.fixture
def recorded():
    experiment = simba_experiment()
    store = ResultStore.open("memory://numbering")
    store.archive_experiment(experiment)
    return store, experiment


def _refs(experiment):
    candidate = next(t for t in experiment.trials if candidate_number(t) == 2)
    number = 2
    return candidate, [candidate.index, str(candidate.index), f"#{candidate.index}",
                       f"c{number}", f"candidate {number}", candidate.id]  # fmt: skip


def test_experiment_trial_accepts_every_form(recorded):
    _, experiment = recorded
    candidate, refs = _refs(experiment)
    assert {experiment.trial(ref).id for ref in refs} == {candidate.id}
    assert experiment.trial(0).name == "baseline"
    with pytest.raises(TrialNotFound, match="rows run 0–3"):
        experiment.trial(999)


def test_web_pages_and_api_accept_every_form(recorded):
    store, experiment = recorded
    candidate, refs = _refs(experiment)
    client = TestClient(create_app(store), base_url="http://127.0.0.1")
    for ref in [quote(str(r)) for r in refs[1:] if not str(r).startswith("#")]:
        page = client.get(f"/experiments/{experiment.id}/trials/{ref}")
        assert page.status_code == 200, (ref, page.text[:300])
        api = client.get(f"/api/experiments/{experiment.id}/trials/{ref}")
        assert api.status_code == 200 and api.json()["id"] == candidate.id
    missing = client.get(f"/experiments/{experiment.id}/trials/999")
    assert missing.status_code == 404 and "rows run 0–3" in missing.text


def test_the_cli_accepts_every_form_and_names_its_flags(recorded):
    _, experiment = recorded
    candidate, refs = _refs(experiment)
    url = "memory://numbering"
    for ref in refs[1:]:
        shown = CliRunner().invoke(
            main, ["experiments", "show", experiment.id, "--trial", str(ref), "--store", url]
        )
        assert shown.exit_code == 0 and candidate.name in shown.output
    same = CliRunner().invoke(main, ["compare", experiment.id, experiment.id, "--store", url])
    assert same.exit_code == 2 and f"{experiment.id}:0 {experiment.id}:c8" in same.output
    assert "TraceViewer" not in same.output
