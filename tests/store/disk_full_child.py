"""Run in a subprocess by test_disk_full.py: fill the disk under a store, then free it.

    python -m tests.store.disk_full_child URL MODE

MODE ``tmpfs``: the store is on a small tmpfs, a filler file takes most of it; ``rlimit``:
RLIMIT_FSIZE caps the size of any file this process writes. Prints one JSON line: what
failed and how, and whether everything written before, and after space came back, reads
back whole.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dspex import Experiment, ProgramInfo, ResultStore, StoreError, TraceEvent, Trial, new_id


def trial(experiment_id: str, index: int, events: int) -> Trial:
    trial_id = new_id("trl")
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=index)
    return Trial(
        id=trial_id,
        experiment_id=experiment_id,
        index=index,
        score=0.5,
        started_at=start,
        finished_at=start + timedelta(seconds=1),
        events=tuple(
            TraceEvent(
                trial_id=trial_id,
                sequence=i,
                timestamp=start,
                monotonic_ns=i,
                source="execution",
                kind="lm_call",
                pid=1,
                worker="w",
                payload={"response": os.urandom(300).hex()},  # does not compress
            )
            for i in range(events)
        ),
    )


def main(url: str, mode: str) -> None:
    root = Path(url.removeprefix("file://").removeprefix("sqlite:///")).parent
    filler = root / "filler"
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    store = ResultStore.open(url).connect()
    experiment = Experiment(name="full", program=ProgramInfo(name="qa"), status="running")
    store.start_experiment(experiment)
    if mode == "tmpfs":
        filler.write_bytes(
            b"\0" * (os.statvfs(root).f_bavail * os.statvfs(root).f_frsize - 300_000)
        )
    else:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
    kept: list[Trial] = []
    failure: BaseException | None = None
    for index in range(300):
        made = trial(experiment.id, index, 8)
        try:
            store.record_trial(experiment.id, made)
            kept.append(made)
        except BaseException as exc:  # noqa: BLE001 - what it is, is the result
            failure = exc
            break
    sealed_failure: BaseException | None = None
    big = Experiment(name="big", program=ProgramInfo(name="qa"), status="completed")
    big = big.replace(trials=(trial(big.id, 0, 1000),))  # 700 KB: does not fit
    try:
        store.archive_experiment(big)
    except BaseException as exc:  # noqa: BLE001
        sealed_failure = exc
    # space comes back: the next writes work, and nothing written before is lost
    if mode == "tmpfs":
        filler.unlink()
    else:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    read_back = store.get_experiment(experiment.id).trials == tuple(kept)
    more = trial(experiment.id, len(kept), 8)
    store.record_trial(experiment.id, more)
    final = experiment.replace(status="completed", trials=(*kept, more))
    checksum = store.archive_experiment(final)
    print(
        json.dumps(
            {
                "kept": len(kept),
                "failure": type(failure).__name__,
                "store_error": isinstance(failure, StoreError),
                "message": str(failure),
                "seal_failure": type(sealed_failure).__name__,
                "seal_store_error": isinstance(sealed_failure, StoreError),
                "seal_message": str(sealed_failure),
                "big_absent": store.count_experiments() == 1,
                "count": store.count_experiments(),
                "read_back_before": read_back,
                "sealed_after": checksum == final.content_checksum()
                and store.get_experiment(experiment.id) == final,
                "verify": [p.reason for p in store.verify()],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
