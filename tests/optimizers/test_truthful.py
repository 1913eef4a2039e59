"""What the records say is what happened: predictor names, the returned candidate, the
variables in effect for each LM call, warnings that count real calls."""

from __future__ import annotations

import contextlib
import io
import json

import dspy
import pytest

import dspex
from dspex import ExperimentStatus
from dspex.offline import exact_match, exact_match_with_feedback
from dspex.optimizers.gepa import MIN_GEPA, gepa_version

from .conftest import QA, events_of, role
from .scripted import FIRST, scripted_lm, scripted_metric, topics

EVAL = {"num_threads": 1, "display_progress": False}


def _bare():
    return dspy.Predict(dspy.Signature("question -> answer", FIRST))


def _texts(archived):
    """Every decision and change of ``archived`` as JSON text, to search for names."""
    kinds = ("decision", "candidate_created", "step")
    return json.dumps(
        [e.payload for t in archived.trials for e in t.events if e.kind.value in kinds]
    )


def _compile_bare(store, compile_):
    lm = scripted_lm()
    with dspy.context(lm=lm), contextlib.redirect_stderr(io.StringIO()):
        with dspex.experiment("bare", program=_bare(), store=store) as exp:
            compile_(_bare())
    return lm, store.get_experiment(exp.id)


_BARE = {
    "COPRO": lambda p: dspy.COPRO(metric=scripted_metric, breadth=2, depth=2).compile(
        p, trainset=topics(2), eval_kwargs=EVAL
    ),
    "LabeledFewShot": lambda p: dspy.LabeledFewShot(k=3).compile(p, trainset=topics(2)),
    "BootstrapFewShot": lambda p: dspy.BootstrapFewShot(
        metric=scripted_metric, max_bootstrapped_demos=2, max_labeled_demos=0
    ).compile(p, trainset=topics(2)),
    "GEPA": lambda p: dspy.GEPA(
        metric=scripted_metric,
        max_metric_calls=30,
        reflection_lm=dspy.settings.lm,
        num_threads=1,
    ).compile(p, trainset=topics(2), valset=topics(1)),
}


@pytest.mark.parametrize("optimizer", sorted(_BARE))
def test_a_bare_predict_is_named_predict_in_every_record(store, optimizer):
    if optimizer == "GEPA" and (gepa_version() or MIN_GEPA) < MIN_GEPA:
        pytest.skip("gepa < 0.1 (DSPy 3.2): GEPA runs in degraded mode, checked by "
                    "test_gepa.py::test_the_record_is_full_or_says_it_is_degraded")  # fmt: skip
    lm, archived = _compile_bare(store, _BARE[optimizer])
    assert archived.status is ExperimentStatus.COMPLETED
    assert archived.warnings == ()  # no degraded mode: the hook understood the program
    assert "predict.self" not in _texts(archived)
    named = {n for t in archived.trials for n in t.variables.predictors}
    assert named == {"predict"}
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    # COPRO asks for n completions at once: one LM call, n requests
    assert sum(len(e.payload["response"]) for e in calls) == lm.engine.calls
    if optimizer == "COPRO":
        candidates = [t for t in role(archived, "candidate") if "depth" in t.metadata]
        assert len(candidates) == 4
        assert all(
            events_of(t, "decision")[0].payload["details"]["predictor"] == "predict"
            for t in candidates
        )
    if optimizer == "BootstrapFewShot":
        kept = [d for t in archived.trials for d in _decisions(t) if d["details"].get("accepted")]
        assert kept and all(d["details"]["demos_added"] == {"predict": 1} for d in kept)
        assert all(d["action"] == "Keep its trace as demo(s) for predict" for d in kept)
    if optimizer == "LabeledFewShot":
        decision = events_of(archived.trials[0], "decision")[0].payload
        assert decision["decision"] == "Labeled demos: predict gets 3"


def test_calls_no_experiment_can_claim_are_counted_once_per_real_call(store):
    """A thread without dspex's context while two experiments are open: each experiment
    is told of every program call and every LM call once, named by what was called."""
    import threading

    lm = scripted_lm()
    program = _bare()
    program.set_lm(lm)  # the thread does not see dspy.context either

    def outsider():
        # its own trace: else DSPy appends these calls to the process-wide one
        with dspy.context(trace=[]):
            for topic in ("alpha", "beta", "gamma", "alpha"):
                program(question=f"About {topic}?")

    with dspex.experiment("one", store=store) as one, dspex.experiment("two", store=store):
        thread = threading.Thread(target=outsider, name="outsider")
        thread.start()
        thread.join()
    assert lm.engine.calls == 4
    (warning,) = store.get_experiment(one.id).warnings
    counts = warning.split(" on thread(s) ")[0]
    assert counts == "not recorded: 4 x a call of Predict, 4 x an LM call to test/scripted"
    assert "outsider" in warning


def _mipro(store, program, zero_shot):
    lm = scripted_lm()
    demos = 0 if zero_shot else 2
    optimizer = dspy.MIPROv2(
        metric=scripted_metric,
        prompt_model=lm,
        task_model=lm,
        auto=None,
        num_candidates=2,
        num_threads=1,
        verbose=False,
    )
    with dspy.context(lm=lm), dspex.experiment("mipro", program=program, store=store) as exp:
        compiled = optimizer.compile(
            program,
            trainset=topics(4),
            valset=topics(2),
            num_trials=4,
            minibatch_size=3,
            minibatch_full_eval_steps=2,
            max_bootstrapped_demos=demos,
            max_labeled_demos=demos,
        )
    return lm, compiled, store.get_experiment(exp.id)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("zero_shot", [False, True])
def test_mipro_says_which_candidate_it_returned_and_why(store, zero_shot):
    from dspex.cli._demo_summary import demo_summary

    lm, compiled, archived = _mipro(store, _bare(), zero_shot)
    assert archived.warnings == ()
    assert "predict.self" not in _texts(archived)
    (outer,) = [t for t in role(archived, "compile") if t.name == "MIPROv2 compile"]
    final = events_of(outer, "decision")[-1].payload
    returned = next(t for t in archived.trials if t.id == final["details"]["returned"])
    number = returned.metadata["candidate"]
    assert final["decision"] == f"Return {returned.name} · candidate {number}"
    full = {t.parent_trial_ids[0]: t.score for t in role(archived, "validation")}
    default = next(t for t in archived.trials if t.name == "default program")
    full[default.id] = default.score
    assert final["details"]["full_scores"] == full
    assert full[returned.id] == max(full.values())
    # every candidate has its number: the default program 0, optuna trials 1, 2...
    candidates = [t for t in role(archived, "candidate")]
    assert [t.metadata["candidate"] for t in candidates] == list(range(len(candidates)))
    summary = demo_summary(archived)
    assert f"Returned: Return {returned.name} · candidate {number} (Highest" in summary
    assert "Labeled demos" not in summary.split("Returned:")[1]
    (demo_sets,) = [d for d in _decisions(outer) if d["step"] == 1]
    assert ("few-shot candidates" in demo_sets["rationale"].lower()) is not zero_shot
    if zero_shot:
        assert "discards them" in demo_sets["rationale"]
        assert all(not p.demos for p in returned.variables.predictors.values())


def _decisions(trial):
    return [e.payload for e in events_of(trial, "decision")]


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter, dspy.JSONAdapter])
def test_each_adapter_call_is_counted_once_on_its_module(store, adapter):
    """JSONAdapter inherits ChatAdapter's format, which DSPy wraps for callbacks once per
    class: one format reaches callbacks twice, nested (GEPA's reflection uses it)."""
    lm = scripted_lm()
    program = _bare()
    with dspy.context(lm=lm, adapter=adapter()):
        with dspex.experiment("adapters", program=program, store=store) as exp:
            for topic in ("alpha", "beta", "gamma"):
                program(question=f"About {topic}?")
    (trial,) = store.get_experiment(exp.id).trials
    by_id = {e.id: e for e in trial.events}
    assert lm.engine.calls == len(events_of(trial, "lm_call")) == 3
    assert not events_of(trial, "adapter_format") and not events_of(trial, "adapter_parse")
    ends = [e for e in events_of(trial, "module_end") if "adapter" in e.payload]
    assert len(ends) == 3  # one per predictor call, each its own
    for end in ends:
        times = end.payload["adapter"]
        assert (times["adapter"], times["formats"], times["parses"]) == (adapter.__name__, 1, 1)
        assert by_id[end.payload["start_id"]].kind.value == "module_start"


# -- the variables in effect are the ones each call ran with ----------------------------


def _one_line(text):
    return " ".join(str(text).split())


def _module_start(event, by_id):
    """The call of the predictor that made the LM call ``event``."""
    while event is not None and event.kind.value != "module_start":
        event = by_id.get(event.parent_id)
    return event


def _check_each_call_ran_what_is_shown(archived, program_predictors):
    """For every LM call of a program predictor: the instructions and demos recorded for
    its module call are in the call's prompt, and the trial's view shows them above it."""
    from dspex.view.timeline import build_timeline

    checked = 0
    for trial in archived.trials:
        by_id = {e.id: e for e in trial.events}
        shown = {}
        for block in build_timeline(trial, archived).blocks:
            shown.update(dict(block.header))
            for entry in block.entries:
                call = entry.event
                if call.kind.value != "lm_call" or call.payload["module"] not in program_predictors:
                    continue
                start = _module_start(call, by_id)
                recorded = start.payload["instructions"]
                prompt = _one_line(" ".join(str(m["content"]) for m in call.payload["messages"]))
                assert _one_line(recorded) in prompt, (trial.name, call.id)
                for demo in start.payload["demos"]:
                    assert _one_line(demo["question"]) in prompt
                name = f"instructions · {start.payload['module']}"
                variants = [k for k in shown if k.startswith(name)]
                assert variants, (trial.name, name)
                texts = [_one_line(shown[k]).rstrip("…") for k in variants]
                # the one shown, or one of the few shown when calls in one block ran
                # with different instructions
                assert any(_one_line(recorded).startswith(t) for t in texts), (trial.name, texts)
                if len(variants) == 1:
                    assert _one_line(recorded).startswith(texts[0])
                checked += 1
    return checked


def _fewshot_knn(train):
    import numpy as np

    def embed(texts):
        vectors = np.zeros((len(texts), 32), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, hash(word) % 32] += 1.0
        return vectors

    return dspy.KNNFewShot(
        k=2, trainset=train, vectorizer=dspy.Embedder(embed), max_bootstrapped_demos=1
    )


_OPTIMIZERS = {
    "SIMBA": lambda t, d: dspy.SIMBA(
        metric=exact_match, bsize=4, num_candidates=2, max_steps=2, max_demos=2, num_threads=2
    ).compile(QA(), trainset=t[:12], seed=0),
    "GEPA": lambda t, d: dspy.GEPA(
        metric=exact_match_with_feedback,
        max_metric_calls=40,
        reflection_lm=dspy.settings.lm,
        num_threads=2,
    ).compile(QA(), trainset=t[:12], valset=d[:6]),
    "MIPROv2": lambda t, d: dspy.MIPROv2(
        metric=exact_match, auto=None, num_candidates=2, num_threads=2, verbose=False
    ).compile(
        QA(),
        trainset=t[:12],
        valset=d[:6],
        num_trials=3,
        minibatch_size=3,
        max_bootstrapped_demos=1,
        max_labeled_demos=1,
    ),
    "COPRO": lambda t, d: dspy.COPRO(metric=exact_match, breadth=2, depth=2).compile(
        QA(), trainset=t[:8], eval_kwargs={"num_threads": 2, "display_progress": False}
    ),
    "BootstrapFewShot": lambda t, d: dspy.BootstrapFewShot(
        metric=exact_match, max_bootstrapped_demos=2, max_labeled_demos=2
    ).compile(QA(), trainset=t[:8]),
    "BootstrapFewShotWithRandomSearch": lambda t, d: dspy.BootstrapFewShotWithRandomSearch(
        metric=exact_match,
        max_bootstrapped_demos=2,
        max_labeled_demos=2,
        num_candidate_programs=2,
        num_threads=2,
    ).compile(QA(), trainset=t[:8], valset=d[:6]),
    "LabeledFewShot": lambda t, d: dspy.LabeledFewShot(k=3).compile(QA(), trainset=t[:8]),
    "KNNFewShot": lambda t, d: _fewshot_knn(t[:8]).compile(QA()),
}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("optimizer", list(_OPTIMIZERS))
def test_the_instructions_shown_for_each_lm_call_are_the_ones_in_its_prompt(
    lm, arith, store, optimizer
):
    if optimizer == "GEPA" and (gepa_version() or MIN_GEPA) < MIN_GEPA:
        pytest.skip("gepa < 0.1 (DSPy 3.2): GEPA runs in degraded mode, checked by "
                    "test_gepa.py::test_the_record_is_full_or_says_it_is_degraded")  # fmt: skip
    train, dev = arith
    quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
    with quiet[0], quiet[1]:
        with dspex.experiment(optimizer, program=QA(), program_name="qa", store=store) as exp:
            compiled = _OPTIMIZERS[optimizer](train, dev)
            if optimizer in ("LabeledFewShot", "KNNFewShot"):
                for example in dev[:3]:  # they make no LM call while compiling
                    compiled(question=example.question)
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.COMPLETED and archived.warnings == ()
    calls = [e for t in archived.trials for e in events_of(t, "lm_call")]
    assert sum(len(e.payload["response"]) for e in calls) == lm.engine.calls
    assert _check_each_call_ran_what_is_shown(archived, {"qa.predict"}) > 0
    _check_no_label_over_nothing(archived)


def _check_no_label_over_nothing(archived):
    """In every trial's text view, full and abridged: a label (``details:``,
    ``qa.predict.instructions after:``, ``parent:``) always has something after it."""
    from rich.console import Console

    from dspex.view.display import TrialView
    from dspex.view.text import render_trial_text

    for trial in archived.trials:
        console = Console(file=io.StringIO(), width=100, color_system=None)
        console.print(TrialView(archived, trial))
        views = [render_trial_text(archived, trial, abridged=a, max_events=None) for a in (0, 1)]
        for text in [*views, console.file.getvalue()]:
            lines = [line.strip("│").rstrip() for line in text.splitlines()]
            for number, line in enumerate(lines):
                assert not line.endswith(" parent:"), (trial.name, line)
                if line.lstrip().startswith(">") or not line.endswith(":"):
                    continue
                following = lines[number + 1] if number + 1 < len(lines) else ""
                if following.lstrip().startswith(">"):  # a quoted text: not blank
                    assert following.strip(" >"), (trial.name, line)


def test_a_text_of_only_whitespace_is_said_to_be_so():
    from datetime import UTC, datetime

    from dspex.model import EventKind, TraceEvent
    from dspex.view.entries import describe

    change = {"predictor": "qa.predict", "field": "prefix", "before": "Answer:", "after": " "}
    event = TraceEvent(
        trial_id="trl_01M91K9DJ5E22TN93RKEB62P6Q",
        sequence=0,
        timestamp=datetime.now(UTC),
        monotonic_ns=0,
        source="orchestration",
        kind=EventKind.CANDIDATE_CREATED,
        pid=1,
        worker="main",
        payload={
            "optimizer": "COPRO",
            "candidate": "trl_01M91K9DJ5E22TN93RKEB62P6Q",
            "name": "candidate 1",
            "parents": [],
            "strategy": None,
            "changes": [change],
        },
    )
    assert describe(event).texts == (("qa.predict.prefix after", "(only whitespace: ' ')"),)
