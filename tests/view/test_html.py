"""The notebook HTML, parsed and checked by structure (and for escaping)."""

from __future__ import annotations

import json

import pytest
from markupsafe import Markup, escape

from dspex.model.scopes import scored
from dspex.view import ExperimentView, TrialView
from dspex.view import html as html_module
from dspex.view.html import json_for_script
from dspex.view.labels import trial_label
from dspex.view.overview import build_overview
from dspex.view.runs import segments
from dspex.view.timeline import build_timeline
from tests.view.fixtures import XSS, XSS_TEXT
from tests.view.htmltree import parse


def _trial_doc(experiment, trial):
    return parse(TrialView(experiment, trial).to_html())


def test_trial_view_has_every_section_and_every_event(recorded):
    for trial in recorded.trials:
        doc = _trial_doc(recorded, trial)
        root = doc.find("div", "dspex-view")
        assert root.find("h2").text().startswith(f"{trial_label(trial)} · ")
        sections = {c for s in root.find_all("section") for c in s.classes}
        timeline = build_timeline(trial, recorded)
        assert {"dspex-controls", "dspex-timeline"} <= sections
        assert ("dspex-time" in sections) == bool(timeline.time_by_source)
        assert ("dspex-diff" in sections) == (timeline.parent is not None)
        assert ("dspex-errors" in sections) == bool(timeline.problems)
        entries = root.find_all(cls="dspex-entry")
        assert len(entries) == len(trial.events)
        assert sorted(int(e.attrs["data-seq"]) for e in entries) == sorted(
            e.sequence for e in trial.events
        )
        by_worker: dict[str, list[int]] = {}
        for e in entries:
            by_worker.setdefault(e.attrs["data-worker"], []).append(int(e.attrs["data-seq"]))
        assert all(seqs == sorted(seqs) for seqs in by_worker.values())  # each in its order
        lm_calls = [e for e in trial.events if e.kind.value == "lm_call"]
        assert len(root.find_all("details", "lm-call")) == len(lm_calls)
        blocks = root.find_all("details", "dspex-block")
        assert len(blocks) == len(segments(timeline.blocks))
        assert {e.attrs["data-source"] for e in entries} == {e.source.value for e in trial.events}


def test_orchestration_block_reads_like_the_design_document(simba):
    doc = _trial_doc(simba, simba.trials[1])
    decision = doc.find(cls="kind-decision")
    terms = [dt.text() for dt in decision.find_all("dt")]
    assert terms[:4] == ["Decision", "Strategy", "Rationale", "Action"]
    created = doc.find(cls="kind-candidate_created")
    assert "Change" in [dt.text() for dt in created.find_all("dt")]
    execution = doc.find_all("details", "src-execution")[0]  # the optimizer's feedback call
    header = [dt.text() for dt in execution.find("dl", "block-header").find_all("dt")]
    assert header[:3] == ["Timestamp", "Worker", "Program"]
    runs = doc.find("details", "dspex-runs")  # the examples, one row each, on two workers
    header = [dt.text() for dt in runs.find("dl", "block-header").find_all("dt")]
    assert header[:2] == ["Timestamp", "Program"]
    assert "instructions · qa.predict" in header and "demos · qa.predict" in header
    score = doc.find(cls="kind-trial_score")
    assert "Final Score" in score.text()


def test_lm_calls_are_collapsed_and_hold_prompt_and_response(simba):
    doc = _trial_doc(simba, simba.trials[0])
    call = doc.find("details", "lm-call")
    assert "open" not in call.attrs
    labels = [d.text() for d in call.find_all(cls="text-label")]
    assert labels == ["prompt · system", "prompt · user", "response"]
    assert "tokens" in call.find("summary").text()


def test_long_texts_fold_behind_show_all(simba):
    doc = _trial_doc(simba, simba.trials[0])
    fold = doc.find(cls="foldable")
    assert fold.find("summary").text().startswith("show all (")
    preview, full = fold.find("pre", "preview").text(), fold.find("details").find("pre").text()
    assert len(preview) < len(full) and full.startswith(preview.removesuffix(" …"))


def test_filters_are_hidden_until_the_script_runs(simba):
    doc = _trial_doc(simba, simba.trials[1])
    controls = doc.find("section", "dspex-controls")
    assert "hidden" in controls.attrs
    axes = {b.attrs["data-axis"] for b in controls.find_all("button")}
    assert axes == {"source", "worker", "module"}
    assert controls.find("input").attrs["type"] == "search"


def test_parent_diff_marks_the_added_rule(simba):
    doc = _trial_doc(simba, simba.trials[1])
    diff = doc.find("section", "dspex-diff")
    added = [i.text() for i in diff.find_all("ins")]
    assert any("convert everything to the smallest unit" in a for a in added)
    assert diff.find_all("del") == []


def test_errors_section_shows_the_traceback(simba):
    doc = _trial_doc(simba, simba.trials[3])
    errors = doc.find("section", "dspex-errors")
    assert "AdapterParseError" in errors.text()
    assert "Traceback (most recent call last)" in errors.text()
    assert len(doc.find_all(cls="failed")) >= 2


def test_experiment_view_sections(recorded):
    doc = parse(ExperimentView(recorded).to_html())
    root = doc.find("div", "dspex-experiment")
    sections = {c for s in root.find_all("section") for c in s.classes}
    assert {"dspex-about", "dspex-summary", "dspex-lineage", "dspex-trials"} <= sections
    overview = build_overview(recorded)
    assert ("dspex-plot" in sections) == any(t.score is not None for t in recorded.trials)
    assert "dspex-best" in sections  # the pair, or why there is none
    rows = root.find("table", "trial-table").find("tbody").find_all("tr")
    assert len(rows) == len(recorded.trials)
    # One panel per scope: scores of different example sets never share a line.
    pairs = scored(recorded.trials)
    panels = root.find("section", "dspex-plot").find_all("svg")
    assert len(panels) == len({s.name for _, s in pairs})
    assert sum(len(svg.find_all("circle")) for svg in panels) == len(pairs)
    assert all(len(svg.find_all("path", "best-so-far")) == 1 for svg in panels)
    assert {c.attrs["data-trial"] for svg in panels for c in svg.find_all("circle")} == {
        t.id for t, _ in pairs
    }
    assert overview.scope is not None
    assert len(root.find("section", "dspex-lineage").find_all("li")) == len(recorded.trials)
    stats = root.find("section", "dspex-summary").text()
    assert "95% CI" in stats and "p50" in stats and "p95" in stats and "tokens" in stats
    assert "Wilson score" in stats and overview.scope.label in stats


def test_lineage_nests_candidates_under_their_parents(simba):
    doc = parse(ExperimentView(simba).to_html())
    lineage = doc.find("section", "dspex-lineage")
    depth = {
        li.text().split(" (")[0].split(" ·")[0]: sum(1 for a in li.ancestors() if a.tag == "ul")
        for li in lineage.find_all("li")
    }
    assert depth == {"Trial 0": 1, "Trial 1": 2, "Trial 2": 3, "Trial 3": 3}
    assert "append_a_demo" in lineage.text()


@pytest.mark.parametrize("view", ["trial", "experiment"])
def test_data_is_escaped_and_only_our_scripts_exist(simba, view):
    html = TrialView(simba, simba.trials[0]) if view == "trial" else ExperimentView(simba)
    text = html.to_html()
    for attack in XSS:
        if not attack.startswith("</"):
            assert attack not in text
    assert text.count("</script>") == text.count("<script") == 2
    assert "</textarea>" not in text
    doc = parse(text)
    scripts = doc.find_all("script")
    assert [s.attrs.get("type") for s in scripts] == ["application/json", None]
    assert json.loads(scripts[0].text())["view"] == view
    assert not [n for n in doc.iter() if any(k.startswith("on") for k in n.attrs)]
    assert not doc.find_all("img") and not doc.find_all("textarea")
    visible = doc.text()
    assert XSS[0] in visible  # shown as text in the experiment name or the response
    if view == "trial":
        assert all(x in visible for x in XSS)


@pytest.mark.parametrize("escape_str", [html_module._esc, html_module._replace_escape])
def test_table_escaping_is_markupsafes(escape_str):
    # the trial table and lineage escape with markupsafe's inner routine when it escapes
    # the same (else the replacements in Python): both must equal markupsafe.escape
    texts = [*XSS, XSS_TEXT, "&amp; already", "é ü – 😀", "", "plain", "a\x00b"]
    for text in texts:
        assert escape_str(text) == str(escape(text))
        assert type(escape_str(text)) is str
    assert html_module._text(Markup("<b>kept</b>")) == "<b>kept</b>"
    assert html_module._text(3) == "3"


def test_json_for_script_cannot_close_the_script():
    text = json_for_script({"a": "</script><!-- & >"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!-- & >"}


def test_the_experiments_warnings_are_in_every_view(simba):
    """A gap in the record is never silent: what could not be recorded is shown."""
    from dspex import ExperimentView

    warning = "not recorded: 3 x a call of Predict on thread(s) <b>outsider</b>"
    view = ExperimentView(simba.replace(warnings=(warning,)))
    html = view.to_html()
    assert "Not recorded" in html and "&lt;b&gt;outsider&lt;/b&gt;" in html
    text = " ".join(view.to_text().split())  # wrapped at the width
    assert "warning: not recorded: 3 x a call of Predict" in text and "outsider" in text
    markdown = view.to_markdown()
    assert "3 x a call of Predict" in markdown and "&lt;b&gt;outsider&lt;/b&gt;" in markdown
