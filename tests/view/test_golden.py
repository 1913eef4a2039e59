"""Text, Markdown and rich output at a fixed width, compared with golden files.

Golden files live in tests/view/golden/<data file stem>/. After an intended change,
rewrite them with ``DSPEX_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from rich.console import Console

from dspex.view import ExperimentView, TrialView
from dspex.view.text import render_trial_text

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("DSPEX_UPDATE_GOLDEN") == "1"


def _check(path: Path, actual: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; create it with DSPEX_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name} differs; rewrite with DSPEX_UPDATE_GOLDEN=1"


def _rich(renderable: object) -> str:
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_experiment_text(recorded, recorded_file):
    _check(GOLDEN / recorded_file.stem / "experiment.txt", ExperimentView(recorded).to_text(100))


def test_experiment_markdown(recorded, recorded_file):
    _check(GOLDEN / recorded_file.stem / "experiment.md", ExperimentView(recorded).to_markdown())


def test_experiment_rich(recorded, recorded_file):
    _check(GOLDEN / recorded_file.stem / "experiment.rich.txt", _rich(ExperimentView(recorded)))


def test_trial_text(recorded, recorded_file):
    for trial in recorded.trials:
        view = TrialView(recorded, trial)
        _check(GOLDEN / recorded_file.stem / f"trial-{trial.index}.txt", view.to_text(100))


def test_trial_markdown(recorded, recorded_file):
    for trial in recorded.trials:
        view = TrialView(recorded, trial)
        _check(GOLDEN / recorded_file.stem / f"trial-{trial.index}.md", view.to_markdown())


def test_trial_rich(recorded, recorded_file):
    for trial in recorded.trials:
        view = TrialView(recorded, trial)
        _check(GOLDEN / recorded_file.stem / f"trial-{trial.index}.rich.txt", _rich(view))


def test_abridged_best_trial_as_the_demo_prints_it(recorded, recorded_file):
    best = recorded.best_trial or recorded.trials[-1]
    text = render_trial_text(recorded, best.id, width=100, abridged=True, max_events=30)
    _check(GOLDEN / recorded_file.stem / "best-abridged.txt", text)
    assert all(len(line) <= 100 for line in text.splitlines())
