"""A real notebook, executed by a real kernel, whose HTML outputs are clicked in Chromium.

The kernel spec is written to a temporary directory (the venv's python, with
PYTHONPATH pointing at this checkout), so nothing depends on kernels installed on the
machine.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

import dspex
from tests.view.conftest import REPO
from tests.view.fixtures import XSS

pytestmark = pytest.mark.browser

KERNEL = "dspex-view-test"

CELLS = [
    """import dspex
from dspex import TraceViewer, ResultStore
from tests.view.fixtures import simba_experiment

exp = simba_experiment()
store = ResultStore.open("memory://notebook")
store.archive_experiment(exp)
dspex.configure(store={"backend": "memory"})
ResultStore.default().archive_experiment(exp)""",
    "TraceViewer.view_experiment(exp.id, store=store)",
    "TraceViewer.view_trial(exp.id, exp.trials[1].id)  # the configured store",
    "TraceViewer.view_trial(exp.id, exp.trials[0].id, store=store)",
    """try:
    TraceViewer.view_trial(exp.id, dspex.new_id("trl"), store=store)
except dspex.TrialNotFound as exc:
    print("not found:", exc)""",
    "TraceViewer.compare(exp.id, 0, exp.id, 2, store=store)  # two trials side by side",
    "print(TraceViewer.compare(exp.id, 0, exp.id, 2, store=store).comparison.describe())",
]


def _kernel_spec(directory: Path) -> Path:
    src = Path(dspex.__file__).resolve().parents[1]
    path = [str(src), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    spec_dir = directory / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "dspex view test",
                "language": "python",
                "env": {"PYTHONPATH": os.pathsep.join(path)},
            }
        )
    )
    return directory / "kernels"


def _execute(tmp_path: Path) -> nbformat.NotebookNode:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    specs = KernelSpecManager(kernel_dirs=[str(_kernel_spec(tmp_path / "jupyter"))])
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = NotebookClient(
        nb,
        km=manager,
        timeout=120,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    nbformat.write(nb, tmp_path / "viewer.ipynb")
    return nb


def _html_outputs(nb: nbformat.NotebookNode) -> list[str]:
    return [
        out["data"]["text/html"]
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if "data" in out and "text/html" in out["data"]
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> tuple[nbformat.NotebookNode, Path]:
    tmp_path = tmp_path_factory.mktemp("notebook")
    nb = _execute(tmp_path)
    outputs = _html_outputs(nb)
    page = tmp_path / "outputs.html"
    # Roughly what an exported notebook holds: each output's HTML in its own cell div.
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>notebook outputs</title>"
        + "".join(
            f'<div class="output" id="out-{i}">{html}</div>' for i, html in enumerate(outputs)
        ),
        encoding="utf-8",
    )
    return nb, page


def test_notebook_runs_and_renders_html_views(executed, simba):
    nb, _ = executed
    outputs = _html_outputs(nb)
    assert len(outputs) == 4
    assert "dspex-experiment" in outputs[0]
    assert "Trial 1 · candidate 1 · 0.8333 on full (n=6)" in outputs[1]
    assert "Trial 0 · 0.6667 on full (n=6)" in outputs[2]
    plain = [out["data"]["text/plain"] for cell in nb.cells[1:4] for out in cell.outputs]
    assert plain[0].startswith("Experiment simba-arith")
    # Each view is stored once: its HTML and a few lines of text, no Markdown copy.
    for cell in nb.cells[1:4]:
        for out in cell.outputs:
            assert set(out["data"]) == {"text/html", "text/plain"}
            assert len(out["data"]["text/plain"].splitlines()) <= 4
    streams = "".join(out.get("text", "") for out in nb.cells[4].outputs)
    assert "no trial with id 'trl_" in streams and simba.id in streams


def test_notebook_outputs_are_interactive_in_chromium(executed, page, artifacts):
    _, path = executed
    p = page.page
    p.goto(path.as_uri())
    trial = p.locator("#out-1")
    assert trial.locator(".dspex-controls").is_visible()

    call = trial.locator("details.lm-call").first
    prompt = call.locator(".text pre").first
    assert not prompt.is_visible()
    call.locator(":scope > summary").click()
    assert prompt.is_visible() and prompt.inner_text().strip()

    executions = trial.locator(".dspex-entry[data-source=execution]:visible").count()
    assert executions > 0
    trial.locator("button[data-axis=source][data-value=execution]").click()
    assert trial.locator(".dspex-entry[data-source=execution]:visible").count() == 0
    # The other trial view on the page keeps its own filters.
    assert (
        p.locator("#out-2 .dspex-entry[data-source=execution]:not(.hidden-by-filter)").count() > 0
    )

    trial.locator("button[data-axis=source][data-value=execution]").click()
    run = trial.locator("details.example-run").first  # one example's run, folded
    run.locator(":scope > summary").click()
    predict_call = run.locator("details.lm-call[data-module='qa.predict']").first
    predict_call.locator(":scope > summary").click()
    fold = predict_call.locator(".foldable").first
    full = fold.locator("details pre")
    assert not full.is_visible()
    fold.locator("summary").click()
    assert full.is_visible() and not fold.locator("pre.preview").is_visible()

    assert XSS[4] in p.locator("#out-2").inner_text()  # dataset text, shown as text
    p.locator("#out-0 table.trial-table th", has_text="score").click()
    p.screenshot(path=str(artifacts / "notebook-outputs.png"), full_page=True)
    page.assert_no_script_ran()


def test_notebook_outputs_stay_readable_without_javascript(executed, chromium, artifacts):
    _, path = executed
    context = chromium.new_context(java_script_enabled=False)
    try:
        p = context.new_page()
        p.goto(path.as_uri())
        assert not p.locator(".dspex-controls").first.is_visible()  # no dead buttons
        trial = p.locator("#out-1")
        assert trial.locator("h2").inner_text() == "Trial 1 · candidate 1 · 0.8333 on full (n=6)"
        assert trial.locator(".kind-decision").first.is_visible()
        call = trial.locator("details.lm-call").first
        call.locator(":scope > summary").click()  # <details> opens without script
        assert call.locator(".text pre").first.is_visible()
        rows = p.locator("#out-0 table.trial-table tbody tr")
        assert rows.count() == 4
        text = p.locator("#out-2").inner_text()
        assert XSS[1] in text  # dataset text shown as text
        p.screenshot(path=str(artifacts / "notebook-no-js.png"), full_page=False)
    finally:
        context.close()


def test_notebook_compares_two_trials_side_by_side(executed, page, simba, artifacts):
    nb, path = executed
    printed = "".join(out.get("text", "") for out in nb.cells[6].outputs)
    assert "2 wins / 0 losses / 4 ties" in printed and "exact McNemar" in printed
    p = page.page
    p.goto(path.as_uri())
    view = p.locator("#out-3 .dspex-compare")
    assert view.locator("table.sides tbody tr").count() == 2
    stats = view.locator("section.dspex-statistics").inner_text()
    assert "difference (B - A)" in stats and "paired bootstrap" in stats
    rows = view.locator("table.examples tbody tr")
    assert rows.count() == 6
    outcomes = [rows.nth(i).get_attribute("data-outcome") for i in range(6)]
    assert outcomes == ["win", "win", "tie", "tie", "tie", "tie"]  # the flips first
    assert XSS[1] in view.locator("table.examples").inner_text()  # dataset text, as text
    assert "qa.predict.instructions" in view.locator("section.dspex-variables").inner_text()
    view.screenshot(path=str(artifacts / "notebook-compare.png"))
    page.assert_no_script_ran()
