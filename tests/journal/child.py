"""A recording process for the journal's fault tests (run as a script, killed or not).

    python child.py STORE_URL SPOOL_DIR LM_LOG [--rounds N] [--calls]

Runs SIMBA compiles on the offline arithmetic task inside one dspex experiment, round
after round (forever without --rounds); with ``--calls``, direct calls of the task's
program instead, one after another in the calling thread, a round being one pass over the
examples (a program that records as fast as it can, with no thread of DSPy's own). On an
engine that appends the completion time of
every request it answers to LM_LOG with one unbuffered write (so the log survives a
SIGKILL). Prints ``started <experiment id>`` once the experiment runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import dspy

import dspex
from dspex.offline import ArithQA, exact_match, load_arith
from dspex.offline.lm import AsyncOfflineEngine, OfflineEngine
from dspex.store import ResultStore


class LoggingEngine(OfflineEngine):
    """The offline engine, with one line per answered request in a log file."""

    def __init__(self, log_path: str) -> None:
        super().__init__(seed=0)
        self._log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def answer(self, *args: Any, **kwargs: Any) -> tuple[str, int, int]:
        answered = super().answer(*args, **kwargs)
        os.write(self._log, f"{time.time_ns()}\n".encode())
        return answered


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("spool")
    parser.add_argument("log")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--calls", action="store_true")
    args = parser.parse_args()
    dspex.configure(journal={"spool_dir": args.spool})
    engine = LoggingEngine(args.log)
    lm = dspy.LM(
        "offline/arith", engine=engine, async_engine=AsyncOfflineEngine(engine), cache=False
    )
    train, _ = load_arith()
    store = ResultStore.open(args.store)
    with dspy.context(lm=lm), dspex.experiment("killed", store=store) as exp:
        print("started", exp.id, flush=True)
        round_ = 0
        program = ArithQA()
        while not args.rounds or round_ < args.rounds:
            if args.calls:
                for example in train:
                    program(**example.inputs())
                round_ += 1
                continue
            optimizer = dspy.SIMBA(
                metric=exact_match, bsize=4, num_candidates=2, max_steps=2, max_demos=2
            )
            optimizer.compile(ArithQA(), trainset=train[:8], seed=round_)
            round_ += 1
    print("sealed", exp.id, flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
