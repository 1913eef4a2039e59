"""dspex changes nothing of what DSPy does with its own settings.

DSPy's own tests (``tests/utils/test_settings.py``: save and load, ``exclude_keys``,
``modules_to_serialize``) pass inside an experiment and under ``autolog()``, and inside an
autologged ``dspy.Evaluate``: nothing of dspex that DSPy cannot pickle is in its settings,
and a reload leaves exactly one dspex callback, which records each call once.
"""

from __future__ import annotations

import copy
import importlib
import sys
import uuid
from collections.abc import Iterator

import dspy
import pytest

import dspex
from dspex import EventKind
from dspex.capture import DspexCallback, shared_callback

from .conftest import addition_set, exact
from .test_experiment import QA


@pytest.fixture(autouse=True)
def _dspy_settings_restored() -> Iterator[None]:
    """These tests call dspy.configure, as DSPy's own do; put the global config back."""
    config = importlib.import_module("dspy.dsp.utils.settings").main_thread_config
    saved = copy.copy(dict(config))
    yield
    config.clear()
    config.update(saved)
    dspex.autolog(disable=True)


@pytest.fixture
def offline() -> Iterator[dspy.LM]:
    """An LM DSPy can pickle with its settings (the capture tests' own engine holds a lock),
    configured globally as DSPy's tests do: a ``dspy.context`` would hide what a reload
    changes in the global configuration."""
    lm = dspex.offline_lm()
    dspy.configure(lm=lm)
    yield lm


def engine_calls() -> int:
    """Calls answered by the engine of the LM in effect (a reload gives a copy of it,
    counting on from the count it was saved with)."""
    return dspy.settings.lm.engine.calls


def _dspex_callbacks() -> int:
    return sum(isinstance(c, DspexCallback) for c in dspy.settings.callbacks or [])


def _nothing_of_dspex_in_settings() -> None:
    config = dspy.settings.config
    assert not [k for k in config if "dspex" in k.lower()]
    for key, value in config.items():
        if key == "callbacks":
            continue
        assert "dspex" not in type(value).__module__, key


# -- DSPy's own three tests, as they are written, inside dspex --------------------------


def _save_load(tmp_path) -> None:
    dspy.settings.configure(
        lm=dspy.LM("openai/gpt-4o"), adapter=dspy.JSONAdapter(), callbacks=[lambda x: x]
    )
    dspy.settings.save(tmp_path / "settings.pkl")
    dspy.settings.configure(lm=None, adapter=None, callbacks=None)
    loaded = dspy.settings.load(tmp_path / "settings.pkl", allow_pickle=True)
    dspy.settings.configure(**loaded)
    assert dspy.settings.lm.model == "openai/gpt-4o"
    assert isinstance(dspy.settings.adapter, dspy.JSONAdapter)
    assert len(dspy.settings.callbacks) == 1


def _save_exclude_keys(tmp_path) -> None:
    dspy.settings.configure(
        lm=dspy.LM("openai/gpt-4o"), adapter=dspy.JSONAdapter(), track_usage=True
    )
    dspy.settings.save(tmp_path / "settings.pkl", exclude_keys=["adapter", "track_usage"])
    dspy.settings.configure(lm=None, adapter=None, track_usage=False)
    loaded = dspy.settings.load(tmp_path / "settings.pkl", allow_pickle=True)
    dspy.settings.configure(**loaded)
    assert dspy.settings.lm.model == "openai/gpt-4o"
    assert dspy.settings.adapter is None
    assert not dspy.settings.track_usage


def _save_with_extra_modules(tmp_path) -> None:
    (tmp_path / "custom_module_dspex_test.py").write_text("def callback(x):\n    return x + 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import custom_module_dspex_test  # type: ignore[import-not-found]

        dspy.settings.configure(callbacks=[custom_module_dspex_test.callback])
        path = tmp_path / "settings.pkl"
        dspy.settings.save(path, modules_to_serialize=[custom_module_dspex_test])
        sys.modules.pop("custom_module_dspex_test", None)
        sys.path.remove(str(tmp_path))
        dspy.settings.configure(callbacks=None)
        loaded = dspy.settings.load(path, allow_pickle=True)
        dspy.settings.configure(**loaded)
        assert dspy.settings.callbacks[0](3) == 4
    finally:
        if str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))


DSPY_TESTS = {
    "test_dspy_settings_save_load": _save_load,
    "test_dspy_settings_save_exclude_keys": _save_exclude_keys,
    "test_settings_save_with_extra_modules": _save_with_extra_modules,
}


@pytest.mark.parametrize("name", sorted(DSPY_TESTS))
def test_dspy_settings_tests_pass_inside_an_experiment(name, tmp_path, store):
    with dspex.experiment(name, store=store):
        _nothing_of_dspex_in_settings()
        DSPY_TESTS[name](tmp_path)


@pytest.mark.parametrize("name", sorted(DSPY_TESTS))
def test_dspy_settings_tests_pass_under_autolog(name, tmp_path, store):
    dspex.autolog(store=store)
    _nothing_of_dspex_in_settings()
    DSPY_TESTS[name](tmp_path)


def test_settings_save_inside_an_autologged_evaluate(offline, store, tmp_path):
    """The metric saves DSPy's settings while dspex records the evaluation."""
    saved = []

    def metric(example, prediction, trace=None):
        path = tmp_path / f"settings-{uuid.uuid4().hex}.pkl"  # the metric runs in threads
        dspy.settings.save(path)
        saved.append(dspy.settings.load(path, allow_pickle=True))
        return exact(example, prediction)

    dspex.autolog(store=store)

    result = dspy.Evaluate(devset=addition_set(3), metric=metric, display_progress=False)(QA())
    assert len(saved) == 3
    assert all("dspex" not in " ".join(map(str, s)) for s in saved)
    (summary,) = store.query_experiments()
    trial = store.get_experiment(summary.id).trials[0]
    scores = [r.metrics["metric"] for r in trial.example_results]
    assert len(scores) == 3 and sum(scores) / 3 * 100 == pytest.approx(result.score)


# -- a reload leaves one dspex callback ------------------------------------------------


def test_a_reload_under_autolog_keeps_one_callback_that_records_each_call_once(
    offline, store, tmp_path
):
    dspex.autolog(store=store)
    assert _dspex_callbacks() == 1
    dspy.settings.save(tmp_path / "settings.pkl")
    loaded = dspy.settings.load(tmp_path / "settings.pkl", allow_pickle=True)
    dspy.settings.configure(**loaded)
    assert _dspex_callbacks() == 1
    assert [c for c in dspy.settings.callbacks if isinstance(c, DspexCallback)] == [
        shared_callback()
    ]
    dspy.Evaluate(devset=addition_set(4), metric=exact, display_progress=False)(QA())
    with dspex.experiment("after reload", store=store):
        QA()(question="What is 2 + 3?")
    lm_calls = [
        e
        for summary in store.query_experiments()
        for t in store.get_experiment(summary.id).trials
        for e in t.events
        if e.kind is EventKind.LM_CALL
    ]
    assert engine_calls() == 5 and len(lm_calls) == 5


def test_a_reload_inside_an_experiment_keeps_one_callback(offline, store, tmp_path):
    with dspex.experiment("reload", store=store) as exp:
        dspy.settings.save(tmp_path / "settings.pkl")
        dspy.settings.configure(**dspy.settings.load(tmp_path / "settings.pkl", allow_pickle=True))
        assert _dspex_callbacks() == 1
        QA()(question="What is 1 + 1?")
    calls = [e for t in exp.trials for e in t.events if e.kind is EventKind.LM_CALL]
    assert engine_calls() == 1 and len(calls) == 1


def test_the_callback_pickles_as_a_reference_not_its_calls_in_flight():
    import cloudpickle

    assert cloudpickle.loads(cloudpickle.dumps(shared_callback())) is shared_callback()
    other = DspexCallback()
    copy_of_other = cloudpickle.loads(cloudpickle.dumps(other))
    assert isinstance(copy_of_other, DspexCallback) and copy_of_other is not shared_callback()
