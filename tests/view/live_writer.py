"""A run recording into a store from another process, one trial per command on stdin.

    python -m tests.view.live_writer STORE_URL
    < "trial"   -> records the next trial of the SIMBA fixture, answers "wrote N"
    < "finish"  -> archives the experiment as completed, answers "finished"

It prints "ready EXPERIMENT_ID" once the running experiment's header is in the store.
The browser tests watch a page of the UI update while this process writes.
"""

from __future__ import annotations

import sys

from dspex import ResultStore, utc_now
from dspex.ids import new_id
from dspex.model.experiment import summarize
from tests.view.fixtures import simba_experiment


def main(url: str) -> None:
    store = ResultStore.open(url).connect()
    template = simba_experiment()
    experiment_id = new_id("exp")
    ids = {t.id: new_id("trl") for t in template.trials}
    trials = [
        t.replace(
            id=ids[t.id],
            experiment_id=experiment_id,
            parent_trial_ids=tuple(ids[p] for p in t.parent_trial_ids),
            events=tuple(e.replace(trial_id=ids[t.id]) for e in t.events),
        )
        for t in template.trials
    ]
    running = template.replace(
        id=experiment_id,
        name="live run",
        status="running",
        started_at=utc_now(),
        completed_at=None,
        trials=(),
        summary=None,
        best_trial_id=None,
    )
    store.start_experiment(running)
    print("ready", experiment_id, flush=True)
    written = []
    for line in sys.stdin:
        command = line.strip()
        if command == "trial":
            trial = trials[len(written)]
            store.record_trial(experiment_id, trial)
            written.append(trial)
            print("wrote", len(written), flush=True)
        elif command == "finish":
            best = max((t for t in written if t.score is not None), key=lambda t: t.score)
            store.archive_experiment(
                running.replace(
                    status="completed",
                    completed_at=utc_now(),
                    trials=tuple(written),
                    summary=summarize(written),
                    best_trial_id=best.id,
                )
            )
            print("finished", flush=True)
            return


if __name__ == "__main__":
    main(sys.argv[1])
