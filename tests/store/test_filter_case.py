"""Program and optimizer filters ignore the case of ASCII letters, on every backend."""

from __future__ import annotations

from dspex import Experiment, OptimizerInfo, ProgramInfo


def _exp(program: str, optimizer: str | None) -> Experiment:
    return Experiment(
        name=f"{program}-{optimizer}",
        program=ProgramInfo(name=program),
        optimizer=OptimizerInfo(name=optimizer) if optimizer else None,
        status="completed",
    )


def test_optimizer_and_program_match_in_any_case(store):
    for program, optimizer in [("qa", "SIMBA"), ("QA", "MIPROv2"), ("Ärger", None)]:
        store.archive_experiment(_exp(program, optimizer))

    def names(**filters: str) -> set[str]:
        return {s.name for s in store.query_experiments(filters)}

    assert names(optimizer="simba") == {"qa-SIMBA"}
    assert names(optimizer="miprov2") == names(optimizer="MIPROV2") == {"QA-MIPROv2"}
    assert names(program="qa") == names(program="Qa") == {"qa-SIMBA", "QA-MIPROv2"}
    # only ASCII letters fold: what SQLite and PostgreSQL agree on
    assert names(program="Ärger") == {"Ärger-None"} and names(program="ärger") == set()
    assert store.count_experiments(optimizer="Simba") == 1
