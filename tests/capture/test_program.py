"""What capture reads from a program: the paths of its modules, found without walking
the call histories DSPy keeps on every module."""

from __future__ import annotations

import dspy
import pytest

from dspex.capture.program import module_paths, root_module_name, sub_modules


class Pipeline(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.draft = dspy.ChainOfThought("question -> answer")
        self.steps = [dspy.Predict("answer -> check"), dspy.Predict("check -> verdict")]
        self.by_name = {"polish": dspy.Predict("verdict -> text")}
        self.same = self.draft  # one module, two paths: named once
        self.label = "not a module"

    def forward(self, question: str) -> dspy.Prediction:
        return self.draft(question=question)


class Untouchable(dict):
    """A history entry that fails the test if anything walks into it."""

    def items(self):  # type: ignore[override]
        raise AssertionError("the walk went into a module's call history")


def test_paths_are_the_ones_dspy_finds():
    program = Pipeline()
    assert list(sub_modules(program)) == list(program.named_sub_modules())
    paths = module_paths(program, "pipe")
    assert paths[id(program.draft.predict)] == "pipe.draft.predict"
    assert paths[id(program.steps[1])] == "pipe.steps[1]"
    assert paths[id(program.by_name["polish"])] == "pipe.by_name[polish]"
    assert len(paths) == 6


@pytest.mark.parametrize("entries", [1, 5_000])
def test_call_histories_are_not_walked(entries):
    program = Pipeline()
    history = [Untouchable(messages=[{"role": "user"}]) for _ in range(entries)]
    program.history = history
    program.draft.predict.history = history
    with pytest.raises(AssertionError, match="call history"):
        list(program.named_sub_modules())  # DSPy's own walk goes through every entry
    assert module_paths(program, "pipe")[id(program.draft.predict)] == "pipe.draft.predict"
    assert root_module_name(program) == "pipeline"
    assert root_module_name(program.steps[0]) == "Predict"


def test_something_that_is_not_a_module_has_no_sub_modules():
    thing = object()
    assert list(sub_modules(thing)) == []
    assert module_paths(thing, "x") == {id(thing): "x"}


def test_a_program_that_names_its_own_sub_modules_is_taken_at_its_word():
    class Custom(Pipeline):
        def named_sub_modules(self, *args, **kwargs):
            yield "self", self
            yield "self.only", self.steps[0]

    program = Custom()
    assert module_paths(program, "c") == {id(program): "c", id(program.steps[0]): "c.only"}
