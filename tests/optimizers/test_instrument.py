"""Every patch dspex applies to DSPy is listed in one place, applied while an experiment
(or ``autolog()``) needs it, and undone when the last one ends: afterwards DSPy's
classes, module globals and the optimizer instances are exactly as before.
"""

from __future__ import annotations

import contextlib
import io
import types

import dspy
import pytest

import dspex
from dspex.capture import instrument
from dspex.offline import exact_match

from .conftest import QA
from .test_degraded import RUNS


def _targets() -> dict[str, object]:
    """What each listed patch's owner holds now, by patch name (or a marker when absent)."""
    found = {}
    for patch in (*instrument.PATCHES, *instrument.compile_patches()):  # the latter: DSPy 3.2
        try:
            found[patch.name] = vars(patch.owner()).get(patch.leaf, "<inherited>")
        except (ImportError, AttributeError):
            found[patch.name] = "<missing>"
    return found


def _dspex_objects(obj: object) -> list[str]:
    """Attributes of ``obj`` (one level, and the items of its lists) that are dspex's
    capture (the test's own program and metric come from ``dspex.offline``)."""

    def of_dspex(value: object) -> bool:
        module = str(getattr(value, "__module__", None) or type(value).__module__)
        ours = module.startswith("dspex") and not module.startswith("dspex.offline")
        return ours or isinstance(value, functools_partial)

    found = []
    for name, value in vars(obj).items():
        items = value if isinstance(value, list | tuple) else [value]
        found += [name for item in items if of_dspex(item)]
    return found


functools_partial = __import__("functools").partial


def test_the_registry_names_every_patch_once_with_what_it_costs():
    names = [p.name for p in instrument.PATCHES]
    assert len(names) == len(set(names))
    assert all(p.loses for p in instrument.PATCHES)
    covered = {p.optimizer for p in instrument.PATCHES if p.optimizer}
    assert covered == {
        "SIMBA",
        "MIPROv2",
        "COPRO",
        "BootstrapFewShotWithRandomSearch",
        "BootstrapFewShot",
        "GEPA",
    }


def test_patches_are_applied_while_needed_and_undone_after_the_last_experiment(store):
    before = _targets()
    assert not instrument.is_instrumented() and instrument.applied() == []
    with dspex.experiment("one", store=store):
        during, applied = _targets(), instrument.applied()
        with dspex.experiment("two", store=store):
            pass
        assert _targets() == during  # the other experiment still needs them
    # every patch but the optional ones of other DSPy releases (DSPy 3.2's embedding.litellm)
    missing = {p.name for p in instrument.PATCHES if p.optional} - set(applied)
    compiles = {p.name for p in instrument.compile_patches()}  # DSPy 3.2 only
    assert set(applied) == ({p.name for p in instrument.PATCHES} - missing) | compiles
    assert all(during[name] is not before[name] for name in applied)
    assert _targets() == before
    for name, value in _targets().items():
        assert value is before[name], name
    assert instrument.applied() == [] and instrument.unavailable() == {}


def test_autolog_holds_the_patches_until_it_is_disabled(store):
    before = _targets()
    dspex.autolog(store=store)
    dspex.autolog(store=store)  # twice: still one user
    try:
        assert instrument.is_instrumented()
        with dspex.experiment("inside autolog", store=store):
            pass
        assert instrument.is_instrumented()
    finally:
        dspex.autolog(disable=True)
    assert not instrument.is_instrumented()
    assert all(value is before[name] for name, value in _targets().items())


def test_dspys_own_objects_are_back_exactly(store):
    import gepa
    from dspy.clients.base_lm import BaseLM
    from dspy.evaluate import evaluate
    from dspy.teleprompt import mipro_optimizer_v2, simba
    from dspy.teleprompt.gepa import gepa_utils
    from dspy.utils import parallelizer

    kept = {
        "update_history": vars(BaseLM)["update_history"],
        "ParallelExecutor": evaluate.ParallelExecutor,
        "ThreadPoolExecutor": parallelizer.ThreadPoolExecutor,
        "wrap_program": simba.wrap_program,
        "eval_candidate_program": mipro_optimizer_v2.eval_candidate_program,
        "select": vars(mipro_optimizer_v2.MIPROv2)["_select_and_insert_instructions_and_demos"],
        "adapter_evaluate": vars(gepa_utils.DspyAdapter)["evaluate"],
        "optimize": gepa.optimize,
    }
    with dspex.experiment("patched", store=store):
        assert vars(BaseLM)["update_history"] is not kept["update_history"]
        assert gepa.optimize is not kept["optimize"]
    assert vars(BaseLM)["update_history"] is kept["update_history"]
    assert evaluate.ParallelExecutor is kept["ParallelExecutor"]
    assert parallelizer.ThreadPoolExecutor is kept["ThreadPoolExecutor"]
    assert simba.wrap_program is kept["wrap_program"]
    assert mipro_optimizer_v2.eval_candidate_program is kept["eval_candidate_program"]
    assert (
        vars(mipro_optimizer_v2.MIPROv2)["_select_and_insert_instructions_and_demos"]
        is (kept["select"])
    )
    assert vars(gepa_utils.DspyAdapter)["evaluate"] is kept["adapter_evaluate"]
    assert gepa.optimize is kept["optimize"]
    assert not isinstance(BaseLM.update_history, types.MethodType)


OPTIMIZERS = {
    "SIMBA": lambda: __import__("tests.optimizers.conftest", fromlist=["simba"]).simba(
        max_steps=1, bsize=4, num_candidates=2
    ),
    "COPRO": lambda: dspy.COPRO(metric=exact_match, breadth=2, depth=1),
    "BootstrapFewShot": lambda: dspy.BootstrapFewShot(metric=exact_match),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_optimizer_instance_is_as_without_dspex(name, arith, store):
    train, _ = arith
    kwargs = {"trainset": train[:6]}
    if name == "COPRO":
        kwargs["eval_kwargs"] = {"display_progress": False}
    plain, recorded = OPTIMIZERS[name](), OPTIMIZERS[name]()
    strategies = getattr(recorded, "strategies", None)
    with dspy.context(lm=dspex.offline_lm()), contextlib.redirect_stdout(io.StringIO()):
        plain.compile(QA(), **kwargs)
    with dspy.context(lm=dspex.offline_lm()), contextlib.redirect_stdout(io.StringIO()):
        with dspex.experiment(name, program=QA(), store=store):
            recorded.compile(QA(), **kwargs)
    assert sorted(vars(recorded)) == sorted(vars(plain))
    assert _dspex_objects(recorded) == []
    if strategies is not None:
        assert recorded.strategies is strategies  # SIMBA's own list object is back


def test_the_runs_of_the_degraded_tests_cover_every_patched_optimizer():
    covered = {p.optimizer for p in instrument.PATCHES if p.optimizer}
    assert covered <= set(RUNS)


def test_a_patch_a_test_put_back_after_the_experiment_is_not_wrapped_twice(store, monkeypatch):
    """DSPy's own tests monkeypatch ``gepa.optimize`` inside an experiment: when they put
    back what they saw (dspex's patch), the next experiment wraps DSPy's function, not
    that, and the last one to end leaves DSPy's function."""
    import gepa

    real = gepa.optimize
    with dspex.experiment("first", store=store):
        ours = gepa.optimize
        monkeypatch.setattr(gepa, "optimize", lambda **kwargs: None)
    monkeypatch.undo()  # puts back what it replaced: dspex's patch of the first experiment
    assert gepa.optimize is ours
    with dspex.experiment("second", store=store):
        assert gepa.optimize.__wrapped__ is real
    assert gepa.optimize is real
