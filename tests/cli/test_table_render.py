"""The table renderer behind `dspex experiments ls` and `show`, called directly."""

from __future__ import annotations

from dspex import ResultStore
from dspex.cli._tables import experiment_summary_text, ls_table
from tests.view.fixtures import DATA_DIR, load, simba_experiment


def test_wide_terminals_get_ids_and_programs():
    demo = load(DATA_DIR / "simba_demo_trimmed.json")
    summary = experiment_summary_text(demo, width=140)
    assert all(t.id in summary for t in demo.trials)
    store = ResultStore.open("memory://")
    store.archive_experiment(demo)
    assert "PROGRAM" in ls_table(store.query_experiments(), width=140)


def test_data_is_printed_as_text_not_markup():
    experiment = simba_experiment()  # its name holds "<script>" and brackets are not markup
    store = ResultStore.open("memory://")
    store.archive_experiment(experiment.replace(name="[bold]x[/bold] " + experiment.name))
    assert "[bold]x[/bold]" in ls_table(store.query_experiments(), width=200)
