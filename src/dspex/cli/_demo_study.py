"""``dspex demo --study``: a small study on the offline LM, end to end, in well under a
minute: SIMBA against MIPROv2 at four seeds each, in worker processes of this machine,
archived with a verdict across seeds.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import click

from dspex.store import ResultStore

__all__ = ["DEMO_STUDY", "run_demo_study"]

DEMO_STUDY: dict[str, Any] = {
    "hypothesis": "MIPROv2's proposed instructions and demos beat SIMBA's rules on offline "
    "arithmetic, whatever the seed",
    "program": "dspex.offline:ArithQA",
    "data": "dspex.offline:load_arith",
    "metric": "dspex.offline:exact_match",
    "lm": "dspex.offline:offline_lm",
    "seeds": [0, 1, 2, 3],
    "control": "simba",
    "treatment": "mipro",
    "arms": {
        "simba": {
            "optimizer": "dspy.SIMBA",
            "options": {"bsize": 4, "num_candidates": 2, "max_steps": 2, "max_demos": 2,
                        "num_threads": 1},
        },
        "mipro": {
            "optimizer": "dspy.MIPROv2",
            "options": {"auto": "@none", "num_candidates": 2, "num_threads": 1,
                        "verbose": False},
            "compile": {"num_trials": 3, "minibatch": False, "max_bootstrapped_demos": 1,
                        "max_labeled_demos": 1},
        },
    },
}  # fmt: skip


def run_demo_study(store: ResultStore, store_url: str | None, width: int) -> None:
    from dspex.cli.study_cmd import ProgressBar
    from dspex.study import Study
    from dspex.view.study import study_text

    name = "demo-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    study = Study({**DEMO_STUDY, "name": name})
    concurrent = max(1, min(4, os.cpu_count() or 1))
    with ProgressBar(name) as bar:
        record = study.run(
            store=store, engine="local", max_concurrent=concurrent, on_progress=bar.update
        )
    click.echo(study_text(record, width=width), nl=False)
    flag = f" --store {store_url}" if store_url else ""
    click.echo(f"\nLook further:\n  dspex study show {name}{flag}")
    click.echo(f"  dspex study export {name}{flag} --format csv")
    click.echo(f"  dspex ui{flag}    (then open /studies/{name})")
