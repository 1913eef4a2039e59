"""Experiments with one very long trial (100,000 events and more), for the memory tests.

The long trial repeats the events of a recorded SIMBA trial (tests/view/data), each copy
with new ids and its parents and module ends pointing into the copy, so its timeline
nests as the recorded one does::

    experiment = long_experiment(1_000)
    assert len(experiment.trials[1].events) == 1_000
"""

from __future__ import annotations

import json
from typing import Any

from dspex import Experiment, new_id
from tests.view.fixtures import DATA_DIR

LONG_TRIAL = 1
"""The index of the long trial in the experiment (its other trials are short)."""


def long_experiment(events: int) -> Experiment:
    text = (DATA_DIR / "simba_small.json").read_text()
    for trial_id in {t["id"] for t in json.loads(text)["trials"]}:
        text = text.replace(trial_id, new_id("trl"))  # its own trials, wherever named
    data = json.loads(text)
    data["id"] = new_id("exp")
    for trial in data["trials"]:
        trial["experiment_id"] = data["id"]
    template = data["trials"][LONG_TRIAL]["events"]
    copied: list[dict[str, Any]] = []
    while len(copied) < events:
        ids: dict[str, str] = {}
        for original in template[: events - len(copied)]:
            event = dict(original, id=new_id("evt"), sequence=len(copied))
            ids[original["id"]] = event["id"]
            if event["parent_id"] is not None:
                event["parent_id"] = ids.get(event["parent_id"])
            if event["kind"] == "module_end":
                start = event["payload"]["start_id"]
                event["payload"] = dict(event["payload"], start_id=ids.get(start, start))
            copied.append(event)
    data["trials"][LONG_TRIAL]["events"] = copied
    return Experiment.from_dict(data)
