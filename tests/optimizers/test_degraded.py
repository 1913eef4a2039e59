"""When DSPy changes under dspex, the user's compile runs as without dspex, and the record
says what it lacks.

Each case simulates a DSPy release that renames one internal a hook relies on (a local
variable of ``compile``, a module global, a private method, a class; see
:mod:`tests.optimizers.release`), or changes what a local variable means. The compile
inside an experiment must return exactly what it returns without dspex under the same
release; the experiment is sealed ``completed`` with a warning naming the piece, and
still holds the compile trial with every LM call. With ``capture.strict = true`` the
experiment fails instead.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
from collections.abc import Callable
from typing import Any

import dspy
import gepa
import pytest
from dspy.propose import grounded_proposer
from dspy.teleprompt import bootstrap, copro_optimizer, knn_fewshot, mipro_optimizer_v2
from dspy.teleprompt import random_search as random_search_module
from dspy.teleprompt import simba as simba_module
from dspy.teleprompt.gepa import gepa as gepa_module
from dspy.teleprompt.gepa import gepa_utils

import dspex
from dspex import CaptureError, EventKind, ExperimentStatus, UnsupportedOptimizerVersion
from dspex.offline import exact_match, exact_match_with_feedback

from .conftest import QA, role, simba
from .release import rename

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]


# -- the compiles, small ------------------------------------------------------------------


def _simba(train, dev):
    return simba(max_steps=2, bsize=4, num_candidates=2).compile(QA(), trainset=train[:8], seed=3)


def _mipro(train, dev):
    optimizer = dspy.MIPROv2(
        metric=exact_match, auto=None, num_candidates=2, num_threads=2, verbose=False, seed=1
    )
    return optimizer.compile(
        QA(),
        trainset=train[:8],
        valset=dev[:4],
        num_trials=3,
        minibatch_size=2,
        minibatch_full_eval_steps=2,
        max_bootstrapped_demos=1,
        max_labeled_demos=1,
    )


def _copro(train, dev):
    optimizer = dspy.COPRO(metric=exact_match, breadth=2, depth=2)
    return optimizer.compile(QA(), trainset=train[:6], eval_kwargs={"display_progress": False})


def _random_search(train, dev):
    optimizer = dspy.BootstrapFewShotWithRandomSearch(
        metric=exact_match, max_bootstrapped_demos=2, num_candidate_programs=1
    )
    return optimizer.compile(QA(), trainset=train[:6], valset=dev[:4])


def _bootstrap(train, dev):
    optimizer = dspy.BootstrapFewShot(metric=exact_match, max_bootstrapped_demos=2)
    return optimizer.compile(QA(), trainset=train[:6])


def _gepa(train, dev):
    optimizer = dspy.GEPA(
        metric=exact_match_with_feedback,
        max_metric_calls=30,
        reflection_lm=dspy.settings.lm,
        num_threads=1,
        seed=0,
    )
    return optimizer.compile(QA(), trainset=train[:6], valset=dev[:4])


def _embed(texts):
    return [[float(len(t)), float(sum(map(ord, t)) % 97)] for t in texts]


def _knn(train, dev):
    optimizer = dspy.KNNFewShot(
        k=2,
        trainset=train[:8],
        vectorizer=dspy.Embedder(_embed),
        max_bootstrapped_demos=1,
        max_labeled_demos=1,
    )
    program = optimizer.compile(QA())
    return [program(question=e.question).answer for e in dev[:2]]


RUNS: dict[str, Callable[[Any, Any], Any]] = {
    "SIMBA": _simba,
    "MIPROv2": _mipro,
    "COPRO": _copro,
    "BootstrapFewShotWithRandomSearch": _random_search,
    "BootstrapFewShot": _bootstrap,
    "GEPA": _gepa,
    "KNNFewShot": _knn,
}


# -- the simulated releases: (optimizer, what changed) -> what the warning names -----------


def _local(owner: Any, old: str) -> Callable[[pytest.MonkeyPatch], str]:
    def simulate(monkeypatch: pytest.MonkeyPatch) -> str:
        rename(monkeypatch, owner, {old: f"{old}_v2"})
        return old

    return simulate


def _attribute(owner: Any, old: str) -> Callable[[pytest.MonkeyPatch], str]:
    def simulate(monkeypatch: pytest.MonkeyPatch) -> str:
        rename(monkeypatch, owner, {old: f"{old}_v2"}, attributes_only=True)
        return old

    return simulate


def _moved(owner: Any, old: str, defined_in: Any) -> Callable[[pytest.MonkeyPatch], str]:
    def simulate(monkeypatch: pytest.MonkeyPatch) -> str:
        rename(monkeypatch, owner, {old: f"{old}_v2"}, moved=defined_in)
        return old

    return simulate


def _gepa_optimize_renamed(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(gepa, "optimize_v2", gepa.optimize, raising=False)
    monkeypatch.delattr(gepa, "optimize")
    rename(monkeypatch, gepa_module.GEPA, {"optimize": "optimize_v2"})
    return "gepa.optimize"


def _gepa_adapter_renamed(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(gepa_utils, "DspyAdapterV2", gepa_utils.DspyAdapter, raising=False)
    monkeypatch.setattr(gepa_module, "DspyAdapterV2", gepa_utils.DspyAdapter, raising=False)
    monkeypatch.delattr(gepa_utils, "DspyAdapter")
    monkeypatch.delattr(gepa_module, "DspyAdapter")
    rename(monkeypatch, gepa_module.GEPA, {"DspyAdapter": "DspyAdapterV2"})
    return "DspyAdapter"


def _gepa_callback_renamed(monkeypatch: pytest.MonkeyPatch) -> str:
    from gepa.core import callbacks

    monkeypatch.delattr(callbacks.GEPACallback, "on_candidate_selected")
    return "on_candidate_selected"


class _BatchOfExamples(ast.NodeTransformer):
    """After ``batch = [trainset[i] for i in batch_indices]``, ``batch_indices`` holds the
    examples themselves: the name stays, its meaning changes (SIMBA reads it no more)."""

    def visit_Assign(self, node: ast.Assign) -> Any:
        targets = [getattr(t, "id", None) for t in node.targets]
        if targets == ["batch"]:
            rebind = ast.parse("batch_indices = list(batch)").body[0]
            return [node, rebind]
        return node


def _simba_batch_indices_mean_examples(monkeypatch: pytest.MonkeyPatch) -> str:
    rename(monkeypatch, simba_module.SIMBA, {}, transform=_BatchOfExamples(), only=("compile",))
    return "batch_indices"


SIMBA = simba_module.SIMBA
SIMULATIONS: dict[tuple[str, str], Callable[[pytest.MonkeyPatch], str]] = {
    **{
        ("SIMBA", f"local {n}"): _local(SIMBA, n)
        for n in (
            "batch_idx",
            "batch_indices",
            "bucket_idx",
            "num_demos_to_drop",
            "src_prog_idx",
        )
    },
    ("SIMBA", "global wrap_program"): _moved(SIMBA, "wrap_program", simba_module),
    ("SIMBA", "global prepare_models_for_resampling"): _moved(
        SIMBA, "prepare_models_for_resampling", simba_module
    ),
    ("SIMBA", "attribute strategies"): _local(SIMBA, "strategies"),
    ("SIMBA", "batch_indices holds examples"): _simba_batch_indices_mean_examples,
    **{
        ("MIPROv2", f"method {n}"): _moved(
            mipro_optimizer_v2.MIPROv2, n, mipro_optimizer_v2.MIPROv2
        )
        for n in (
            "_bootstrap_fewshot_examples",
            "_propose_instructions",
            "_select_and_insert_instructions_and_demos",
        )
    },
    ("MIPROv2", "global eval_candidate_program"): _moved(
        mipro_optimizer_v2.MIPROv2, "eval_candidate_program", mipro_optimizer_v2
    ),
    ("MIPROv2", "method propose_instruction_for_predictor"): _moved(
        grounded_proposer.GroundedProposer,
        "propose_instruction_for_predictor",
        grounded_proposer.GroundedProposer,
    ),
    **{
        ("COPRO", f"local {n}"): _local(copro_optimizer.COPRO, n)
        for n in (
            "d",
            "p_i",
            "c_i",
            "candidates_",
            "evaluated_candidates",
            "module",
        )
    },
    ("COPRO", "global Evaluate"): _moved(copro_optimizer.COPRO, "Evaluate", copro_optimizer),
    **{
        ("BootstrapFewShotWithRandomSearch", f"local {n}"): _local(
            random_search_module.BootstrapFewShotWithRandomSearch, n
        )
        for n in ("seed", "size", "score_data")
    },
    ("BootstrapFewShotWithRandomSearch", "global Evaluate"): _moved(
        random_search_module.BootstrapFewShotWithRandomSearch, "Evaluate", random_search_module
    ),
    ("BootstrapFewShot", "method _bootstrap_one_example"): _moved(
        bootstrap.BootstrapFewShot, "_bootstrap_one_example", bootstrap.BootstrapFewShot
    ),
    ("BootstrapFewShot", "method _train"): _moved(
        bootstrap.BootstrapFewShot, "_train", bootstrap.BootstrapFewShot
    ),
    ("GEPA", "gepa.optimize"): _gepa_optimize_renamed,
    ("GEPA", "class DspyAdapter"): _gepa_adapter_renamed,
    ("GEPA", "GEPACallback.on_candidate_selected"): _gepa_callback_renamed,
    ("KNNFewShot", "inner forward_pass"): _local(knn_fewshot.KNNFewShot, "forward_pass"),
    ("KNNFewShot", "attribute KNN"): _attribute(knn_fewshot.KNNFewShot, "KNN"),
}


def _state(result: Any) -> str:
    value = result.dump_state() if hasattr(result, "dump_state") else result
    return json.dumps(value, sort_keys=True, default=str)


def _quietly(run: Callable[[], Any]) -> Any:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return run()


def _run(optimizer: str, arith: Any, lm: Any) -> Any:
    train, dev = arith
    with dspy.context(lm=lm):
        return _quietly(lambda: RUNS[optimizer](train, dev))


@pytest.mark.parametrize("optimizer, change", sorted(SIMULATIONS), ids=lambda v: str(v))
def test_a_changed_internal_degrades_the_record_never_the_run(
    optimizer, change, arith, store, monkeypatch, record_property
):
    piece = SIMULATIONS[optimizer, change](monkeypatch)
    without = _state(_run(optimizer, arith, dspex.offline_lm()))
    lm = dspex.offline_lm()
    with dspex.experiment(f"{optimizer}: {change}", program=QA(), store=store) as exp:
        result = _run(optimizer, arith, lm)
    assert _state(result) == without
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.COMPLETED
    told = [w for w in archived.warnings if piece in w]
    assert told, archived.warnings
    assert any("degraded mode" in w for w in told), told
    if optimizer != "KNNFewShot":  # its compile makes no call: calls come per example
        assert role(archived, "compile")
    calls = [e for t in archived.trials for e in t.events if e.kind is EventKind.LM_CALL]
    # a call asking for n completions (COPRO's proposals) is one call, n engine requests
    completions = sum(len(c.payload["response"] or [None]) for c in calls)
    assert completions == lm.engine.calls > 0
    # what the degraded record still holds (docs/optimizers.md's table is made from these:
    # pytest --junitxml=FILE keeps them as properties)
    record_property("still_recorded", json.dumps(_still_recorded(archived), sort_keys=True))


_ORCHESTRATION = ("step", "decision", "candidate_created", "candidate_scored")


def _still_recorded(experiment: Any) -> dict[str, Any]:
    """Trials by role, and the optimizer's own records, of a degraded experiment."""
    roles: dict[str, int] = {}
    for trial in experiment.trials:
        name = str(trial.metadata.get("role") or "other")
        roles[name] = roles.get(name, 0) + 1
    kinds = {k: 0 for k in _ORCHESTRATION}
    for trial in experiment.trials:
        for event in trial.events:
            if event.kind.value in kinds:
                kinds[event.kind.value] += 1
    evaluations = sum(1 for t in experiment.trials if t.example_results)
    return {"trials": roles, "with_example_results": evaluations, **kinds}


def test_strict_mode_makes_a_degraded_record_an_error(arith, store, monkeypatch):
    piece = SIMULATIONS["SIMBA", "local bucket_idx"](monkeypatch)
    without = _state(_run("SIMBA", arith, dspex.offline_lm()))
    dspex.configure(capture={"strict": True})
    with pytest.raises(UnsupportedOptimizerVersion, match=piece) as raised:
        with dspex.experiment("strict", program=QA(), store=store) as exp:
            result = _run("SIMBA", arith, dspex.offline_lm())
    assert isinstance(raised.value, CaptureError)
    assert _state(result) == without  # the compile itself ran as without dspex
    assert store.get_experiment(exp.id).status is ExperimentStatus.FAILED


def test_the_warning_reaches_stderr_once(arith, store, monkeypatch, capfd):
    from dspex.optimizers import base

    monkeypatch.setattr(base, "_told", set())  # once per process: as if this were the first
    SIMULATIONS["COPRO", "local d"](monkeypatch)
    for _ in range(2):
        with dspex.experiment("twice", program=QA(), store=store):
            with dspy.context(lm=dspex.offline_lm()):
                _copro(*arith)
    err = capfd.readouterr().err
    assert err.count("dspex: warning: COPRO recorded in degraded mode") == 1


# -- DSPy's own test: GEPA with a stand-in for gepa.optimize ------------------------------


class _FakeResult:
    def __init__(self, best_candidate):
        self.best_candidate = best_candidate
        self.val_aggregate_scores = []


@pytest.mark.parametrize("when", ["before the experiment", "inside the experiment"])
def test_a_gepa_optimize_stand_in_is_no_error(when, arith, store, monkeypatch):
    """``test_gepa_seed_mixes_code_and_instruction_components`` in DSPy's suite replaces
    ``gepa.optimize`` by a ``**kwargs`` function: the compile returns normally, and so does
    the experiment (it said ``UnsupportedOptimizerVersion``)."""
    captured = {}

    def fake_optimize(**kwargs):
        captured["seed"] = kwargs["seed_candidate"]
        return _FakeResult(best_candidate=kwargs["seed_candidate"])

    train, dev = arith
    if when == "before the experiment":
        monkeypatch.setattr("gepa.optimize", fake_optimize)
    lm = dspex.offline_lm()
    with dspy.context(lm=lm), dspex.experiment("stand-in", program=QA(), store=store) as exp:
        if when == "inside the experiment":
            monkeypatch.setattr("gepa.optimize", fake_optimize)
        optimizer = dspy.GEPA(
            metric=exact_match_with_feedback, reflection_lm=lm, max_metric_calls=10
        )
        program = optimizer.compile(QA(), trainset=train[:2], valset=dev[:2])
    assert "predict" in captured["seed"] or captured["seed"]
    assert isinstance(program, QA)
    archived = store.get_experiment(exp.id)
    assert archived.status is ExperimentStatus.COMPLETED
    assert role(archived, "compile")
