"""The study views: HTML (notebook and web page), text (``dspex study show``), the web
routes and their JSON. Every string from the record is escaped."""

from __future__ import annotations

import pytest

from dspex import ResultStore, new_id
from dspex.analysis.studies import study_verdict
from dspex.model.study import (
    CellAttempt,
    CellResult,
    StudyArm,
    StudyCell,
    StudyRecord,
)
from dspex.study import StudyResults
from dspex.view.study import study_html, study_text
from dspex.view.web import create_app
from tests.view.conftest import make_client
from tests.view.fixtures import XSS, XSS_TEXT
from tests.view.htmltree import parse


def _record(status: str = "completed") -> StudyRecord:
    scores = {"mipro": [0.8, 0.9, 0.7], "rs": [0.5, 0.6, 0.5]}
    cells = []
    for arm, values in scores.items():
        for seed, score in enumerate(values):
            ones = round(score * 10)
            experiment_id = new_id("exp")
            result = CellResult(
                experiment_id=experiment_id,
                score=score,
                baseline_score=0.4,
                values=tuple([1.0] * ones + [0.0] * (10 - ones)),
                baseline_values=tuple([1.0] * 4 + [0.0] * 6),
                lm_calls=40 + seed,
                tokens=900,
                cost=0.002 * (seed + 1),
                wall_s=2.5,
                curve_scope="full (n=12)",
                curve=((0.5, 0.4), (1.0, score - 0.1), (2.0, score)),
            )
            attempts = (CellAttempt(number=1, experiment_id=experiment_id, outcome="sealed"),)
            if arm == "rs" and seed == 1:
                crashed = CellAttempt(
                    number=1,
                    experiment_id=experiment_id,
                    outcome="crashed",
                    cause=XSS_TEXT,
                    worker="ray",
                    pid=77,
                )
                attempts = (crashed, attempts[0].replace(number=2))
            cells.append(StudyCell(arm=arm, seed=seed, status="sealed", attempts=attempts,
                                   result=result))  # fmt: skip
    running = StudyCell(arm="rs", seed=3, status="running", attempts=(
        CellAttempt(number=1, experiment_id=new_id("exp")),))  # fmt: skip
    record = StudyRecord(
        name="views",
        hypothesis="MIPROv2 beats the random search " + XSS_TEXT,
        control="rs",
        treatment="mipro",
        arms=(
            StudyArm(name="mipro", optimizer="dspy.MIPROv2", seeding="constructor"),
            StudyArm(
                name="rs", optimizer="dspy.BootstrapFewShotWithRandomSearch", seeding="range"
            ),  # fmt: skip
        ),
        seeds=(0, 1, 2, 3),
        examples=tuple(f"k{i}" for i in range(10)),
        cells=(*cells, running),
        warnings=("note " + XSS[1],),
        status=status,
    )
    return record.replace(verdict=study_verdict(record, alpha=0.05))


def test_the_study_html_escapes_every_string_from_the_record():
    html = str(study_html(_record()))
    for attack in XSS:
        assert attack not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_study_html_shows_matrix_links_plots_and_comparisons():
    record = _record()
    tree = parse(str(study_html(record, experiment_url=lambda e: f"/experiments/{e}")))
    matrix = tree.find("table", "matrix")
    links = {a.attrs["href"] for a in matrix.find_all("a")}
    every = {c.experiment_id for c in record.cells}  # a running cell links to its live record
    assert links == {f"/experiments/{e}" for e in every}
    assert "×2" in matrix.text()  # the retried cell says it took two attempts
    assert "running" in matrix.text()
    figures = tree.find_all("figure")
    assert [f.find("figcaption").text().split(" (")[0].split(",")[0] for f in figures] == [
        "Score per seed", "Best so far", "Score against cost"]  # fmt: skip
    strip, curves, cost = (f.find("svg") for f in figures)
    assert len(strip.find_all("circle")) == 6 and len(cost.find_all("circle")) == 6
    assert len(curves.find_all("path")) == 6
    assert "full (n=12)" in figures[1].text() and "USD" in cost.text()
    assert "mipro vs rs" in tree.text() and "Holm" not in tree.find("table").text()
    assert record.verdict is not None and record.verdict.outcome.value in tree.text()


def test_a_running_study_page_reloads_itself_a_finished_one_does_not():
    live = str(study_html(_record("running"), live_url="/api/studies/views/progress"))
    assert 'data-live-url="/api/studies/views/progress"' in live and "<script>" in live
    done = str(study_html(_record(), live_url="/api/studies/views/progress"))
    assert "data-live-url" not in done and "<script>" not in done


def test_the_text_view_shows_arms_comparisons_cells_and_causes_safely():
    text = study_text(_record(), width=120)
    assert "Study views: completed" in text
    assert "mipro vs rs" in text and "Cells (arm x seed" in text
    assert "rs seed 1 attempt 1 (crashed)" in text
    assert "\x1b" not in study_text(_record().replace(hypothesis="bell \x1b[31m red"))
    assert all(len(line) <= 120 for line in text.splitlines())


def test_the_web_ui_lists_studies_shows_one_and_answers_json():
    store = ResultStore.open("memory://")
    store.save_study(_record("running"))
    client = make_client(create_app(store))
    listing = client.get("/studies")
    assert listing.status_code == 200
    row = parse(listing.text).find("tr", **{"data-study": "views"})
    assert row.find("a").attrs["href"] == "/studies/views"
    page = client.get("/studies/views")
    assert page.status_code == 200 and "data-live-url" in page.text
    assert 'href="/experiments/exp_' in page.text
    for attack in (a for a in XSS if a != "</script>"):  # the page's own live script ends so
        assert attack not in page.text and attack not in listing.text
    assert page.text.count("</script>") == page.text.count("<script>") == 1
    progress = client.get("/api/studies/views/progress").json()
    assert progress["live"] is True and progress["sealed"] == 6 and progress["running"] == 1
    assert progress["revision"] == 1 and progress["cells"] == 7
    record = client.get("/api/studies/views").json()
    assert record["name"] == "views" and len(record["cells"]) == 7
    assert [s["name"] for s in client.get("/api/studies").json()["studies"]] == ["views"]
    assert client.get("/studies/nope").status_code == 404
    assert client.get("/studies/..%2Fetc").status_code == 404
    assert client.get("/api/studies/nope/progress").json()["error"].startswith("no study named")
    assert 'href="/studies"' in client.get("/").text  # the nav leads to studies


def test_results_show_in_a_notebook_and_as_rows():
    results = StudyResults(_record())
    html = results._repr_html_()
    assert "<table" in html and "Study views" in html
    rows = results.rows()
    assert len(rows) == 7 and {r["status"] for r in rows} == {"sealed", "running"}
    assert rows[0]["gain"] == pytest.approx(rows[0]["score"] - rows[0]["baseline_score"])
    assert [a.arm for a in results.arms] == ["mipro", "rs"]
