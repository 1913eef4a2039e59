"""What the study tests run: a small arithmetic task, and an LM written here.

``study_lm()`` is a ``dspy.LM`` over an engine of this module (:class:`CountingEngine`):
it answers as dspex's offline engine does, and keeps its own count of the calls it
answered, one byte per call in ``$DSPEX_TEST_STUDY_DIR/calls/<pid>``, so that a test can
compare the LM calls a study recorded with the calls the LM really answered, across
worker processes. With a file ``kill-once`` in that directory, the first call to find
it claims it, writes its process id to ``victim`` and waits to be killed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import dspy

from dspex.offline import OfflineEngine, load_arith

ENV = "DSPEX_TEST_STUDY_DIR"
LATENCY = "DSPEX_TEST_STUDY_LATENCY"  # seconds each call waits, to make cells last


def small_data() -> tuple[list[Any], list[Any]]:
    train, dev = load_arith()
    return train[:16], dev[:10]


def split_data() -> tuple[list[Any], list[Any], list[Any]]:
    train, dev = load_arith()
    return train[:12], train[12:20], dev[:10]


def other_eval_data() -> tuple[list[Any], list[Any]]:
    train, dev = load_arith()
    return train[:16], dev[10:20]


class CountingEngine:
    """Answers like the offline engine; counts its calls in files; may wait to be killed."""

    def __init__(self) -> None:
        self.inner = OfflineEngine(seed=0)

    def complete(self, request: Any) -> Any:
        folder = os.environ.get(ENV)
        if folder:
            _maybe_wait_to_be_killed(Path(folder))
        response = self.inner.complete(request)
        delay = float(os.environ.get(LATENCY) or 0)
        if delay:
            time.sleep(delay)
        if folder:
            calls = Path(folder) / "calls"
            calls.mkdir(exist_ok=True)
            with (calls / str(os.getpid())).open("ab") as handle:
                handle.write(b".")
        return response

    def __deepcopy__(self, memo: dict[int, Any]) -> CountingEngine:
        return self


def _maybe_wait_to_be_killed(folder: Path) -> None:
    marker = folder / "kill-once"
    if not marker.exists():
        return
    try:
        os.rename(marker, folder / "killed")  # atomic: exactly one caller claims it
    except FileNotFoundError:
        return
    (folder / "victim").write_text(str(os.getpid()))
    time.sleep(600)


def study_lm() -> Any:
    return dspy.LM("test/study", engine=CountingEngine(), cache=False)


def calls_answered(folder: Path) -> int:
    calls = folder / "calls"
    return sum(p.stat().st_size for p in calls.iterdir()) if calls.is_dir() else 0


def flaky_data() -> tuple[list[Any], list[Any]]:
    """:func:`small_data`, except that the first call after a ``fail-once`` marker appears
    in the test's directory raises (the marker is claimed, so only once)."""
    folder = os.environ.get(ENV)
    if folder:
        try:
            os.rename(Path(folder) / "fail-once", Path(folder) / "failed")
        except FileNotFoundError:
            pass
        else:
            raise RuntimeError("the data source is unreachable (once)")
    return small_data()
