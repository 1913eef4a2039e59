"""Hostile and extreme data in every view: escape sequences never reach the terminal, a
10 MB LM response renders in linear time, non-finite scores render and serve as JSON,
and settings are served without their secrets."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from rich.console import Console

from dspex import (
    EnvironmentInfo,
    ErrorInfo,
    ExampleResult,
    Experiment,
    LMSettings,
    OptimizerInfo,
    ProgramInfo,
    ResultStore,
    TraceEvent,
    Trial,
    Variables,
    new_id,
)
from dspex.cli import main
from dspex.model import summarize
from dspex.view import ExperimentView, TrialView, render_trial_text
from dspex.view.safetext import fold_lines, terminal_safe
from dspex.view.web import create_app
from tests.view.conftest import make_client

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOSTILE = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;owned\x07\x1b[2J\x9b2J\r\u202eevil"
# What a terminal would act on: any ESC, BEL, CSI/OSC as C1 bytes, carriage return, bidi.
ACTS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _event(trial_id: str, sequence: int, kind: str, payload: dict) -> TraceEvent:
    return TraceEvent(
        trial_id=trial_id, sequence=sequence, timestamp=T0, monotonic_ns=sequence,
        source="execution", kind=kind, pid=1, worker="w" + HOSTILE, payload=payload,
    )  # fmt: skip


def _experiment(response: str = HOSTILE, scores=(0.5,), **fields) -> Experiment:
    experiment_id = new_id("exp")
    trials = []
    for index, score in enumerate(scores):
        trial_id = new_id("trl")
        events = (
            _event(trial_id, 0, "module_start", {"module": "qa" + HOSTILE, "inputs": {}}),
            _event(
                trial_id,
                1,
                "lm_call",
                {
                    "model": "m" + HOSTILE,
                    "messages": [{"role": "user", "content": HOSTILE}],
                    "response": response,
                    "settings": {"api_key": "sk-live-123", "temperature": 0},
                },
            ),  # fmt: skip
            _event(trial_id, 2, "error", {"message": HOSTILE}),
        )
        trials.append(Trial(
            id=trial_id, experiment_id=experiment_id, index=index, name="t" + HOSTILE,
            score=score, started_at=T0, events=events,
            example_results=(ExampleResult(index=0, metrics={"acc": score or 0.0}),),
            variables=Variables(lm=LMSettings(model="m", settings={"api_key": "sk-live-123"})),
            error=ErrorInfo(type="E", message=HOSTILE) if index else None,
            status="failed" if index else "ok",
        ))  # fmt: skip
    values = dict(
        id=experiment_id,
        name="exp" + HOSTILE,
        program=ProgramInfo(name="qa" + HOSTILE),
        status="completed",
        tags=("tag" + HOSTILE,),
        trials=tuple(trials),
        best_trial_id=trials[0].id,
        summary=summarize(trials),
    )
    return Experiment(**{**values, **fields})


def _rich(view, *, colors: bool) -> str:
    out = io.StringIO()
    console = Console(
        file=out,
        width=100,
        force_terminal=colors,
        color_system="truecolor" if colors else None,
        legacy_windows=False,
    )
    console.print(view)
    return out.getvalue()


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


# -- terminal escape injection ----------------------------------------------------------------


def test_terminal_safe_shows_every_control_character_and_keeps_the_width():
    text = "a\x1bb\x07c\td\ne\x9bf\u202eg\x00"
    safe = terminal_safe(text)
    assert ACTS.search(safe) is None and len(safe) == len(text)
    assert safe == "a␛b␇c\td\ne\ufffdf\ufffdg␀"


def test_no_terminal_renderer_passes_an_escape_sequence_through(tmp_path):
    experiment = _experiment(scores=(0.5, 0.25))
    trial = experiment.trials[1]
    outputs = {
        "experiment text": str(ExperimentView(experiment)),
        "trial text": TrialView(experiment, trial).to_text(),
        "trial abridged": TrialView(experiment, trial).to_text(abridged=True),
        "render_trial_text": render_trial_text(experiment, trial),
        "notebook text/plain": TrialView(experiment, trial)._repr_mimebundle_()["text/plain"],
        "experiment rich": _rich(ExperimentView(experiment), colors=False),
        "trial rich": _rich(TrialView(experiment, trial), colors=False),
    }
    url = f"file://{tmp_path / 'store'}"
    with ResultStore.open(url) as store:
        store.archive_experiment(experiment)
    outputs["experiments ls"] = _cli("experiments", "ls", "--store", url)
    outputs["experiments show"] = _cli("experiments", "show", experiment.id, "--store", url)
    outputs["experiments show --trial"] = _cli(
        "experiments", "show", experiment.id, "--trial", "1", "--full", "--store", url
    )
    for name, output in outputs.items():
        assert ACTS.search(output) is None, f"{name}: {ACTS.search(output)!r}"
        assert "␛]52;c;" in output, name  # shown, not dropped
    for view in (ExperimentView(experiment), TrialView(experiment, trial)):
        colored = _rich(view, colors=True)  # rich's own styling is the only escape left
        assert re.sub("\x1b\\[[0-9;]*m", "", colored) == terminal_safe(
            re.sub("\x1b\\[[0-9;]*m", "", colored)
        )
        assert ACTS.search(re.sub("\x1b\\[[0-9;]*m", "", colored)) is None


# -- a 10 MB response ----------------------------------------------------------------------------

BIG = 10_000_000


@pytest.mark.timeout(120)  # quadratic wrapping took about 90 s per view of 10 MB
@pytest.mark.parametrize("shape", ["one word", "words", "lines"])
def test_every_view_of_a_10_mb_response_finishes_and_keeps_all_of_it(shape):
    response = {
        "one word": "x" * BIG,
        "words": ("lorem ipsum dolor " * (BIG // 18 + 1))[:BIG],
        "lines": ("a line of text that is eighty characters long, or close to it, as a test\n"
                  * (BIG // 74 + 1))[:BIG],
    }[shape]  # fmt: skip
    experiment = _experiment(response=response)
    trial = experiment.trials[0]
    view = TrialView(experiment, trial)
    assert _quoted(view.to_text(), "response") == re.sub(r"\s", "", response)  # all of it
    abridged = view.to_text(abridged=True)
    assert len(abridged.splitlines()) < 200 and "more lines)" in abridged
    bundle = view._repr_mimebundle_()
    assert len(bundle["text/plain"].splitlines()) < 200 and len(bundle["text/html"]) > BIG // 2
    assert len(render_trial_text(experiment, trial).splitlines()) < 200
    assert len(view.to_markdown()) > BIG // 2
    rich = _rich(view, colors=False)
    assert len(rich.splitlines()) < 400 and "more lines" in rich


def _quoted(text: str, label: str) -> str:
    """The text quoted under ``label:`` in a plain-text view, whitespace removed."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"{label}:")
    prefix = lines[start][: len(lines[start]) - len(lines[start].lstrip())] + ">"
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith(prefix):
            break
        body.append(line[len(prefix) :])
    return re.sub(r"\s", "", "".join(body))


def test_fold_lines_cuts_long_lines_and_counts_every_piece():
    pieces, total = fold_lines("abcdefghij\n\nxy", 4)
    assert (pieces, total) == (["abcd", "efgh", "ij", "", "xy"], 5)
    assert fold_lines("a" * 10_000, 100, limit=3) == (["a" * 100] * 3, 100)


# -- non-finite scores -------------------------------------------------------------------------


def test_non_finite_scores_render_everywhere_and_serve_as_json_strings(tmp_path):
    nan, inf = float("nan"), float("inf")
    experiment = _experiment(scores=(nan, inf, -inf, 0.5, None))
    # every trial ok and scored on the same example: their scores are comparable
    trials = tuple(t.replace(status="ok", error=None) for t in experiment.trials)
    experiment = experiment.replace(
        trials=trials,
        summary=summarize(trials),
        best_trial_id=trials[0].id,  # chosen by hand
    )
    store = ResultStore.open(f"file://{tmp_path / 'store'}").connect()
    store.archive_experiment(experiment)
    view = ExperimentView(store.get_experiment(experiment.id))
    assert "non-finite (NaN or inf) left out" in str(view)
    for render in (view.to_html, view.to_markdown, lambda: _rich(view, colors=False)):
        assert render()
    for trial in experiment.trials:
        assert TrialView(experiment, trial).to_text()
    client = make_client(create_app(store))
    for path in (
        "/",
        f"/experiments/{experiment.id}",
        f"/experiments/{experiment.id}/trials/{experiment.trials[1].id}",
    ):
        assert client.get(path).status_code == 200, path
    listing = client.get("/api/experiments").json()
    assert listing["experiments"][0]["best_score"] == "NaN"
    full = client.get(f"/api/experiments/{experiment.id}").json()
    assert [t["score"] for t in full["trials"]] == ["NaN", "Infinity", "-Infinity", 0.5, None]
    assert full["summary"]["trial_scores"]["non_finite"] == 3
    one = client.get(f"/api/experiments/{experiment.id}/trials/{experiment.trials[2].id}")
    assert one.status_code == 200 and one.json()["score"] == "-Infinity"
    assert "no experiments match" not in _cli("experiments", "ls", "--store", store.url)


# -- secrets -----------------------------------------------------------------------------------


def test_the_web_ui_serves_settings_without_their_secrets(tmp_path):
    config = {"store": {"url": "postgresql://root:s3cr/t@db:5432/r?password=hunter2"},
              "ui": {"token": "tok-123"}}  # fmt: skip
    experiment = _experiment(
        environment=EnvironmentInfo(config=config),
        optimizer=OptimizerInfo(name="SIMBA", settings={"wandb_api_key": "wb-999", "bsize": 8}),
    )
    store = ResultStore.open(f"file://{tmp_path / 'store'}").connect()
    store.archive_experiment(experiment)
    client = make_client(create_app(store))
    trial = experiment.trials[0]
    served = [
        client.get(f"/api/experiments/{experiment.id}").text,
        client.get(f"/api/experiments/{experiment.id}/trials/{trial.id}").text,
        client.get(f"/experiments/{experiment.id}").text,
        client.get(f"/experiments/{experiment.id}/trials/{trial.id}").text,
        str(ExperimentView(experiment)),
        TrialView(experiment, trial).to_text(),
    ]
    for text in served:
        for secret in ("s3cr/t", "hunter2", "tok-123", "wb-999", "sk-live-123"):
            assert secret not in text, secret
    data = json.loads(served[0])
    assert data["environment"]["config"]["store"]["url"] == (
        "postgresql://root:***@db:5432/r?password=***"
    )
    assert data["optimizer"]["settings"] == {"wandb_api_key": "********", "bsize": 8}
