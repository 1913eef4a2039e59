"""``dspex demo``: a recorded optimizer run on the offline LM, end to end, in under a minute.

    $ dspex demo                       # SIMBA, archived to ./dspex_results (or the set store)
    $ dspex demo --optimizer gepa      # or mipro, copro, random-search
    $ dspex demo --store memory://x    # nothing kept: try it out

It evaluates a zero-shot baseline on the bundled arithmetic dev set, optimizes it
with a real DSPy optimizer on the training set (settings in
:mod:`dspex.cli.demo_runs`), evaluates the result, and prints the experiment id, the
scores, where to look next, and the timeline of the best candidate.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from typing import Any

import click

from dspex.analysis import compare
from dspex.analysis.compare import format_p
from dspex.cli._store import cli_store, store_option
from dspex.cli.demo_runs import DEMOS

__all__ = ["demo"]

DEMO_STEPS = 8
_SIMBA_LOGGER = "dspy.teleprompt.simba"


class _StepWatcher(logging.Handler):
    """Advances the progress bar when SIMBA logs the start of a step."""

    def __init__(self, advance: Any) -> None:
        super().__init__(logging.INFO)
        self.advance = advance

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Starting batch"):
            self.advance(message.removesuffix("."))
        elif message.startswith("VALIDATION"):
            self.advance("Validating the best candidates on the full trainset")


def _program() -> Any:
    from dspex.offline import ArithQA

    return ArithQA()


def _configure_lm() -> Any:
    import dspy

    from dspex.offline import offline_lm

    lm = offline_lm()
    try:
        dspy.configure(lm=lm)
    except RuntimeError:  # configure() belongs to another thread (tests): use a context
        pass
    return lm


def _run(
    store: Any, steps: int, console: Any, optimizer: str = "simba"
) -> tuple[Any, Any, Any, Any]:
    import dspy
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    import dspex
    from dspex.offline import exact_match, load_arith

    train, dev = load_arith()
    program = _program()
    lm = _configure_lm()
    demo = DEMOS[optimizer]
    steps = steps if optimizer == "simba" else 0
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    )
    logger = logging.getLogger(_SIMBA_LOGGER)
    with dspy.context(lm=lm), progress, _quiet_dspy():
        task = progress.add_task("Baseline evaluation", total=steps + 3)

        def advance(description: str) -> None:
            progress.update(task, advance=1, description=description)

        watcher = _StepWatcher(advance)
        logger.addHandler(watcher)
        try:
            with dspex.experiment(
                f"demo: {demo.label} on offline arithmetic",
                hypothesis=demo.hypothesis,
                program=program,
                program_name="qa",
                store=store,
                tags=["demo"],
            ) as exp:
                baseline = exp.evaluate(program, dev, exact_match, name="baseline")
                advance(f"Optimizing with {demo.label}")
                optimized = demo.run(program, train, lm, steps)
                advance("Evaluating the optimized program")
                final = exp.evaluate(optimized, dev, exact_match, name="optimized")
                advance("Done")
        finally:
            logger.removeHandler(watcher)
    return exp, baseline, final, optimized


@contextlib.contextmanager
def _quiet_dspy() -> Any:
    """Hide DSPy's own progress bars (stdout) and log lines below ERROR while our bar runs."""
    handlers = logging.getLogger("dspy").handlers
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(max(handler.level, logging.ERROR))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)


def headline(experiment: Any, baseline: Any, final: Any) -> list[str]:
    """Baseline and optimized program on the same dev set, compared example by example."""
    c = compare(baseline, final)
    lines = [
        f"Baseline:  {c.mean_a:.3f} on {c.scope.label}",
        f"Optimized: {c.mean_b:.3f} on the same examples: {c.difference:+.3f} "
        f"({c.interval.describe()})",
        f"           better on {c.wins}, worse on {c.losses}, unchanged on {c.ties}; "
        f"{c.test} p={format_p(c.p_value)}",
    ]
    if experiment.hypothesis is not None:
        verdict = experiment.hypothesis.verdict
        decided = f"{verdict.outcome.value} at alpha {verdict.alpha:g}" if verdict else "undecided"
        lines.append(f"Hypothesis {decided}: {experiment.hypothesis.research_question}")
    return lines


@click.command("demo")
@store_option
@click.option(
    "--optimizer",
    type=click.Choice(sorted(DEMOS)),
    default="simba",
    show_default=True,
    help="The DSPy optimizer to run.",
)
@click.option("--steps", default=DEMO_STEPS, show_default=True, help="SIMBA steps.")
def demo(store_url: str | None, optimizer: str, steps: int) -> None:
    """Run a recorded optimization on the offline LM and show what it decided."""
    from rich.console import Console

    console = Console(stderr=True)
    started = time.perf_counter()
    store = cli_store(store_url)
    exp, baseline, final, optimized = _run(store, steps, console, optimizer)
    experiment = store.get_experiment(exp.id)
    click.echo(
        f"Experiment {experiment.id} ({experiment.status.value}) in "
        f"{time.perf_counter() - started:.1f}s"
    )
    for line in headline(experiment, baseline, final):
        click.echo(line)
    trials = {t.id: t for t in experiment.trials}
    best = trials.get(getattr(optimized, "dspex_trial_id", "") or "")
    store_arg = f" --store {store_url}" if store_url else ""
    click.echo("Look at it with:")
    click.echo(f"  dspex experiments show {experiment.id}")
    click.echo(
        f"  dspex compare {experiment.id}:{baseline.index} {experiment.id}:{final.index}{store_arg}"
    )
    if best is not None:
        click.echo(f"  dspex experiments show {experiment.id} --trial {best.index} --full")
    click.echo("  dspex ui")
    if best is not None:
        from dspex.view import render_trial_text

        click.echo("")
        click.echo(render_trial_text(experiment, best, width=100, abridged=True, max_events=60))
