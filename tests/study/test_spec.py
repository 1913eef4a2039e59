"""A study spec is checked whole before anything runs: every error at once, each with its
key and line; the seeding of each optimizer; the run options."""

from __future__ import annotations

import pytest

from dspex import StudySpecError
from dspex.model.study import Seeding
from dspex.study import Study, build_spec, load_spec
from dspex.study.seeding import seed_arguments, seeding_of
from tests.study.conftest import spec_data, toml_text


def _problems(excinfo: pytest.ExceptionInfo[StudySpecError]) -> dict[str, str]:
    return {where.split(" (line")[0]: message for where, message in excinfo.value.problems}


def test_a_valid_spec_is_read_with_its_arms_seeding_and_evaluation_set(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(toml_text(spec_data()))
    spec = load_spec(path)
    assert [a.name for a in spec.arms] == ["simba", "mipro", "rs"]
    assert [a.seeding for a in spec.arms] == [Seeding.COMPILE, Seeding.CONSTRUCTOR, Seeding.RANGE]
    assert (spec.control, spec.treatment, spec.seeds) == ("rs", "mipro", (0, 1, 2, 3))
    assert spec.evaluation is not None and spec.evaluation.scope.n == 10
    assert spec.evaluation.scope.metric == "exact_match" and len(set(spec.evaluation.keys)) == 10
    assert str(tmp_path) in spec.paths  # modules beside the spec import


def test_every_error_is_reported_together_with_its_key_and_line(tmp_path):
    data = spec_data(seeds=[0, "one", 2.5, 0])
    del data["hypothesis"]
    data["data"] = "tests.study.lms:no_such_loader"
    data["lm"] = "no_such_package.models:make"
    data["arms"]["simba"]["options"]["max_step"] = 2
    data["arms"]["simba"]["options"]["seed"] = 4
    data["arms"]["mipro"]["data"] = "tests.study.lms:other_eval_data"
    data["arms"]["rs"]["compile"] = {"restrict": [1], "trainset": "x"}
    data["arms"]["rs"]["optimizer"] = "dspy.BootstrapFewShotWithRandomSearch"
    data["arms"]["copro"] = {"optimizer": "dspy.NoSuchOptimizer"}
    data["run"] = {"engine": "spark", "max_concurrent": 0, "retries": -1, "timeout": "1h"}
    data["treatmnet"] = "x"
    path = tmp_path / "study.toml"
    path.write_text(toml_text(data))
    with pytest.raises(StudySpecError) as caught:
        load_spec(path)
    found = _problems(caught)
    message = str(caught.value)
    assert message.startswith(f"study spec {path} has {len(found)} errors:")
    assert "missing" in found["hypothesis"]
    assert "does not import" in found["lm"] and "no_such_package" in found["lm"]
    assert "does not import" in found["data"]
    assert "'one' is not an integer" in found["seeds[1]"]
    assert "2.5 is not an integer" in found["seeds[2]"]
    assert "listed twice" in found["seeds[3]"]
    assert "did you mean 'max_steps'" in found["arms.simba.options.max_step"]
    assert "passes each seed" in found["arms.simba.options.seed"]
    assert "passes 'trainset' itself" in found["arms.rs.compile.trainset"]
    assert "remove 'restrict'" in found["arms.rs.compile.restrict"]
    assert "does not import" in found["arms.copro.optimizer"]
    assert "'spark' is not an engine" in found["run.engine"]
    assert ">= 1" in found["run.max_concurrent"] and ">= 0" in found["run.retries"]
    assert "a number" in found["run.timeout"]
    assert "did you mean 'treatment'" in found["treatmnet"]
    # the line of the key is named: `max_step` sits in the [arms.simba] table's options
    line = next(w for w, _ in caught.value.problems if w.startswith("arms.simba.options.max_step"))
    lines = path.read_text().splitlines()
    number = int(line.split("line ")[1].rstrip(")"))
    assert "max_step = 2" in lines[number - 1]


def test_two_arms_evaluated_on_different_examples_are_refused():
    data = spec_data()
    data["arms"]["mipro"]["data"] = "tests.study.lms:other_eval_data"
    with pytest.raises(StudySpecError) as caught:
        build_spec(data)
    found = _problems(caught)
    assert list(found) == ["arms.mipro.data"]
    assert "every arm must be evaluated on the same examples" in found["arms.mipro.data"]


def test_an_arm_may_bring_its_own_training_data_on_the_same_evaluation_set():
    data = spec_data()
    data["arms"]["mipro"]["data"] = "tests.study.lms:split_data"  # (train, valset, evalset)
    spec = build_spec(data)
    assert spec.arm("mipro").data == "tests.study.lms:split_data"


@pytest.mark.parametrize(
    "change, key, text",
    [
        ({"control": "nope"}, "control", "'nope' is not an arm"),
        ({"control": None, "treatment": None}, "control", "name the two your hypothesis"),
        ({"treatment": "rs"}, "treatment", "two different arms"),
        ({"name": "../up"}, "name", "is not valid"),
        ({"program": "dspex.offline:load_arith"}, "program", "not a dspy.Module"),
        ({"metric": "dspex.offline.datasets:_SPLITS"}, "metric", "not a callable"),
        ({"data": "dspex.offline:exact_match"}, "data", "raised TypeError"),
        ({"seeds": []}, "seeds", "non-empty list"),
        ({"arms": {}}, "arms", "at least one"),
    ],
)
def test_each_kind_of_mistake_is_named(change, key, text):
    data = spec_data()
    for k, v in change.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    with pytest.raises(StudySpecError) as caught:
        build_spec(data)
    found = _problems(caught)
    assert text in found[key], found


def test_with_two_arms_the_first_is_the_control_unless_named():
    data = spec_data(control=None, treatment=None)
    data.pop("control")
    data.pop("treatment")
    del data["arms"]["simba"]
    spec = build_spec(data)
    assert (spec.control, spec.treatment) == ("mipro", "rs")


def test_an_unknown_reference_and_negative_seeds_for_candidate_ranges_are_refused():
    data = spec_data(seeds=[-1, 0])
    data["arms"]["simba"]["options"]["num_threads"] = "@lmm"
    with pytest.raises(StudySpecError) as caught:
        build_spec(data)
    found = _problems(caught)
    assert "no reference" in found["arms.simba.options.num_threads"]
    assert "non-negative seeds; [-1]" in found["seeds"]


def test_how_each_optimizer_takes_its_seed():
    import dspy

    assert seeding_of(dspy.SIMBA) is Seeding.COMPILE
    assert (
        seeding_of(dspy.MIPROv2) is Seeding.CONSTRUCTOR
    )  # not compile(seed=): `seed or self.seed`
    assert seeding_of(dspy.GEPA) is Seeding.CONSTRUCTOR
    assert seeding_of(dspy.BootstrapFewShotWithRandomSearch) is Seeding.RANGE
    for unseeded in (dspy.COPRO, dspy.LabeledFewShot, dspy.BootstrapFewShot, dspy.KNNFewShot):
        assert seeding_of(unseeded) is Seeding.NONE
    assert seed_arguments(Seeding.COMPILE, 3, {}) == ({}, {"seed": 3})
    assert seed_arguments(Seeding.CONSTRUCTOR, 3, {}) == ({"seed": 3}, {})
    assert seed_arguments(Seeding.RANGE, 0, {}) == (
        {"num_candidate_programs": 16},
        {"restrict": [-3, -2, -1, *range(16)]},
    )
    assert seed_arguments(Seeding.NONE, 3, {}) == ({}, {})

    class Seeded(dspy.teleprompt.Teleprompter):  # not one of DSPy's: read from its signature
        def compile(self, student, *, trainset, seed=0):
            return student

    assert seeding_of(Seeded) is Seeding.COMPILE


def test_an_unseedable_arm_runs_one_cell_unless_it_replicates():
    data = spec_data()
    data["arms"]["copro"] = {"optimizer": "dspy.LabeledFewShot", "options": {"k": 2}}
    data["arms"]["copies"] = {"optimizer": "dspy.LabeledFewShot", "replicates": True}
    spec = build_spec(data)
    assert spec.arm("copro").cell_seeds(spec.seeds) == [0]
    assert spec.arm("copies").cell_seeds(spec.seeds) == [0, 1, 2, 3]


def test_a_study_takes_its_spec_as_keywords_or_one_mapping_not_both():
    assert Study(**spec_data()).name == Study(spec_data()).name == "three-arms"
    with pytest.raises(StudySpecError, match="not both"):
        Study(spec_data(), name="x")


def test_a_spec_that_is_not_toml_or_not_there_is_named(tmp_path):
    with pytest.raises(StudySpecError, match="cannot read the study spec"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(StudySpecError, match="is not valid TOML"):
        load_spec(bad)
