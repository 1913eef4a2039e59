"""``dspex demo``: a recorded optimizer run on the offline LM, end to end, in under a minute.

    $ dspex demo                       # SIMBA, archived to ./dspex_results (or the set store)
    $ dspex demo --optimizer gepa      # or mipro, copro, random-search
    $ dspex demo --store memory://x    # nothing kept: try it out
    $ dspex demo --study               # SIMBA vs MIPROv2 at four seeds, with a verdict
    $ dspex demo --rag                 # GEPA on a RAG program: queries, passages, scores

It evaluates a zero-shot baseline on the bundled arithmetic dev set, optimizes it with a
real DSPy optimizer on the training set (settings in :mod:`dspex.cli.demo_runs`),
evaluates the result, and prints a one-screen summary rendered from the archived record
(:mod:`dspex.cli._demo_summary`): scores compared example by example, the hypothesis and
its verdict, the decisions that made the best candidate, and commands to look further.
``--verbose`` adds the best candidate's whole timeline.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from dspex.cli._demo_setup import configure_lm, quiet_dspy
from dspex.cli._store import cli_store, store_option
from dspex.cli.demo_runs import DEMOS
from dspex.errors import DspexError

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


def _run(
    store: Any, steps: int, console: Any, optimizer: str = "simba"
) -> tuple[Any, Any, Any, Any]:
    import dspy
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    import dspex
    from dspex.offline import exact_match, load_arith

    train, dev = load_arith()
    program = _program()
    lm = configure_lm()
    demo = DEMOS[optimizer]
    steps = steps if optimizer == "simba" else 0
    # Transient: the bar is erased when the run ends, so no stale "Done" line stays behind.
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # piped: the summary is all there is to read
    )
    logger = logging.getLogger(_SIMBA_LOGGER)
    with dspy.context(lm=lm), progress, quiet_dspy():
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
        finally:
            logger.removeHandler(watcher)
    return exp, baseline, final, optimized


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
@click.option(
    "--verbose", "-v", is_flag=True, help="Also print the best candidate's whole timeline."
)
@click.option(
    "--study",
    is_flag=True,
    help="Run a small study instead: SIMBA vs MIPROv2 at four seeds, with a verdict across "
    "seeds (see docs/studies.md).",
)
@click.option(
    "--rag",
    is_flag=True,
    help="Run GEPA on a retrieval program instead (a search query, three passages of an "
    "offline corpus, an answer): the summary shows which retrievals the optimization "
    "changed. --optimizer and --steps do not apply.",
)
def demo(
    store_url: str | None, optimizer: str, steps: int, verbose: bool, study: bool, rag: bool
) -> None:
    """Run a recorded optimization on the offline LM and show what it decided."""
    from rich.console import Console

    from dspex.cli._demo_summary import Hints, demo_summary, dspex_command
    from dspex.cli._tables import terminal_width

    if rag and study:
        raise click.UsageError("--rag and --study are two different demos: choose one.")
    try:
        DEMOS["gepa" if rag else optimizer].check()
        if rag:
            from dspex.extras import require

            require("numpy", "dspy[numpy]", "The RAG demo's retriever (dspy.retrievers.Embeddings)")
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    console = Console(stderr=True)
    store = cli_store(store_url)
    if study:
        from dspex.cli._demo_study import run_demo_study

        run_demo_study(store, store_url, terminal_width())
        return
    if rag:
        from dspex.cli._demo_rag import run_rag

        exp = run_rag(store, console)
    else:
        exp, _, _, _ = _run(store, steps, console, optimizer)
    experiment = store.get_experiment(exp.id)
    width = terminal_width()
    # a memory store (--store memory://, or DSPEX_ENV=test) is gone when this command ends
    shown_url = store.url if store_url is None and store.url.startswith("memory:") else store_url
    hints = Hints(shown_url, program=dspex_command())
    click.echo(demo_summary(experiment, hints=hints, width=width), nl=False)
    if verbose:
        _print_best_timeline(experiment, width)


def _print_best_timeline(experiment: Any, width: int) -> None:
    from dspex.cli._demo_summary import evaluated_pair
    from dspex.view import render_trial_text

    _, optimized = evaluated_pair(experiment)
    trials = {t.id: t for t in experiment.trials}
    best = trials.get(optimized.parent_trial_ids[0]) if optimized is not None else None
    best = best or experiment.best_trial
    if best is not None:
        click.echo("")
        click.echo(
            render_trial_text(experiment, best, width=width, abridged=False, max_events=None),
            nl=False,
        )
