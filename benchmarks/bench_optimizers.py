"""Each optimizer of ``dspex demo``, recorded: its time, what it recorded, and every LM call.

    python -m benchmarks.bench_optimizers                      # every demo optimizer
    python -m benchmarks.bench_optimizers --optimizers gepa copro

Each row runs what ``dspex demo --optimizer NAME`` runs (a baseline evaluation on the
offline dev set, the optimizer on the training set, the optimized program on the dev
set) inside one experiment, on a fresh offline LM and an in-memory store, and reports:
the wall time of the whole block, the trials (and candidate trials) and decisions
recorded, and the LM completions recorded against the requests the LM's engine
answered (they must be equal).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from typing import Any

__all__ = ["main", "measure"]

COLUMNS = (
    "optimizer",
    "seconds",
    "trials",
    "candidates",
    "decisions",
    "recorded",
    "requests",
    "baseline",
    "final",
)


def measure(name: str) -> dict[str, Any]:
    """Run the demo of optimizer ``name`` once and count what was recorded."""
    import dspy

    import dspex
    from dspex.cli.demo_runs import DEMOS
    from dspex.offline import ArithQA, exact_match, load_arith

    train, dev = load_arith()
    lm = dspex.offline_lm()
    store = dspex.ResultStore.open("memory://")
    program = ArithQA()
    started = time.perf_counter()
    quiet = contextlib.ExitStack()
    quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
    quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
    with quiet, dspy.context(lm=lm):
        with dspex.experiment(name, program=program, program_name="qa", store=store) as exp:
            baseline = exp.evaluate(program, dev, exact_match, name="baseline")
            optimized = DEMOS[name].run(program, train, lm, 8)
            final = exp.evaluate(optimized, dev, exact_match, name="optimized")
    seconds = time.perf_counter() - started
    archived = store.get_experiment(exp.id)
    events = [e for t in archived.trials for e in t.events]
    return {
        "optimizer": name,
        "seconds": round(seconds, 1),
        "trials": len(archived.trials),
        "candidates": sum(1 for t in archived.trials if t.metadata.get("role") == "candidate"),
        "decisions": sum(1 for e in events if e.kind.value == "decision"),
        "recorded": sum(len(e.payload["response"]) for e in events if e.kind.value == "lm_call"),
        "requests": lm.engine.calls,
        "baseline": baseline.score,
        "final": final.score,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from dspex.cli.demo_runs import DEMOS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizers", nargs="+", choices=sorted(DEMOS), default=list(DEMOS))
    args = parser.parse_args(argv)
    rows = [measure(name) for name in args.optimizers]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    print("  ".join(c.rjust(widths[c]) for c in COLUMNS))
    for row in rows:
        print("  ".join(str(row[c]).rjust(widths[c]) for c in COLUMNS))
    return rows


if __name__ == "__main__":
    main()
