"""DSPy 3.2 does not report ``compile`` to its callbacks (3.3 and later do): dspex's
compile patches make it report them as DSPy 3.3's ``Teleprompter`` does, once per
compile, with its inputs, its result or its exception, and nothing of the compile
changed. With DSPy 3.3 and later there are no such patches.
"""

from __future__ import annotations

import dspy
import pytest
from dspy.teleprompt.teleprompt import Teleprompter
from dspy.utils.callback import BaseCallback

import dspex
from dspex.capture import instrument
from dspex.capture.instrument import compile_patches


class Heard(BaseCallback):
    def __init__(self) -> None:
        self.starts: list[tuple[str, object, dict]] = []
        self.ends: list[tuple[str, object, BaseException | None]] = []

    def on_compile_start(self, call_id, instance, inputs):
        self.starts.append((call_id, instance, inputs))

    def on_compile_end(self, call_id, outputs, exception=None):
        self.ends.append((call_id, outputs, exception))


class Base:
    def compile(self, student, *, trainset, teacher=None):
        if trainset == "boom":
            raise ValueError("bad trainset")
        return ("compiled", student, len(trainset))


class Derived(Base):
    def compile(self, student, *, trainset, teacher=None):
        return super().compile(student, trainset=trainset, teacher=teacher)


@pytest.fixture
def reporting(monkeypatch):
    """Base and Derived as dspex's patches leave them with DSPy 3.2."""
    for cls in (Base, Derived):
        monkeypatch.setattr(cls, "compile", instrument._reporting_compile(cls.__dict__["compile"]))


def test_a_compile_is_reported_once_with_its_inputs_and_result(reporting):
    heard = Heard()
    with dspy.context(callbacks=[heard]):
        result = Derived().compile("program", trainset=[1, 2, 3])
    assert result == ("compiled", "program", 3)
    ((call_id, instance, inputs),) = heard.starts  # the base's compile inside: not again
    assert isinstance(instance, Derived)
    assert inputs == {"student": "program", "trainset": [1, 2, 3], "teacher": None}
    assert heard.ends == [(call_id, result, None)]


def test_a_compile_that_raises_is_reported_and_raises_unchanged(reporting):
    heard = Heard()
    with dspy.context(callbacks=[heard]), pytest.raises(ValueError, match="bad trainset"):
        Base().compile("program", trainset="boom")
    ((call_id, _, error),) = [(c, o, e) for c, o, e in heard.ends]
    assert isinstance(error, ValueError) and heard.starts[0][0] == call_id


def test_without_compile_callbacks_nothing_is_reported_and_bad_arguments_fail_as_before(
    reporting,
):
    plain = BaseCallback()  # DSPy 3.2's BaseCallback has no on_compile_start
    with dspy.context(callbacks=[plain]):
        assert Base().compile("p", trainset=[1]) == ("compiled", "p", 1)
    heard = Heard()
    with dspy.context(callbacks=[heard]), pytest.raises(TypeError):
        Base().compile("p")  # no trainset: Python's own error, nothing reported
    assert heard.starts == [] and heard.ends == []


def test_a_compile_inside_another_instances_compile_is_a_compile_of_its_own(reporting, monkeypatch):
    class Outer(Base):
        def compile(self, student, *, trainset, teacher=None):
            return ("outer", Base().compile(student, trainset=trainset))

    monkeypatch.setattr(Outer, "compile", instrument._reporting_compile(Outer.compile))
    heard = Heard()
    with dspy.context(callbacks=[heard]):
        result = Outer().compile("p", trainset=[1, 2])
    assert result == ("outer", ("compiled", "p", 2))
    assert [type(i).__name__ for _, i, _ in heard.starts] == ["Outer", "Base"]
    assert [o for _, o, _ in heard.ends] == [("compiled", "p", 2), result]


def test_the_patches_exist_exactly_when_dspy_does_not_report_compiles():
    patches = compile_patches()
    if hasattr(BaseCallback, "on_compile_start"):  # DSPy 3.3 and later
        assert patches == ()
        return
    covered = {p.target for p in patches}
    for optimizer in (dspy.SIMBA, dspy.GEPA, dspy.MIPROv2, dspy.COPRO, dspy.BootstrapFewShot,
                      dspy.BootstrapFewShotWithRandomSearch, dspy.LabeledFewShot,
                      dspy.KNNFewShot):  # fmt: skip
        assert optimizer in covered, optimizer
    assert all(p.leaf == "compile" and issubclass(p.target, Teleprompter) for p in patches)
    originals = {p.target: p.target.__dict__["compile"] for p in patches}
    with dspex.experiment("compile patches", store=dspex.ResultStore.open("memory://")):
        assert all(cls.__dict__["compile"] is not f for cls, f in originals.items())
    assert all(cls.__dict__["compile"] is f for cls, f in originals.items())
