"""``dspex compare A B``: two trials or two experiments side by side in the terminal.

    $ dspex compare exp_01...:0 exp_01...:25        # two trials (ids or indices), any experiments
    $ dspex compare exp_01... exp_02...             # two experiments: best trials on the shared set

Prints the paired statistics (when both were scored on the same examples), the variables
and costs that differ, and the examples, the ones they disagree on first.
"""

from __future__ import annotations

import shutil

import click

from dspex.cli._store import cli_store, store_option
from dspex.errors import DspexError

__all__ = ["compare_command"]


def _split(ref: str) -> tuple[str, str | None]:
    experiment_id, _, trial = ref.partition(":")
    return experiment_id, trial or None


@click.command("compare")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option(
    "--width", type=int, default=None, help="Columns (default: the terminal's, 60 to 160)."
)
@store_option
def compare_command(store_url: str | None, a: str, b: str, width: int | None) -> None:
    """Compare A and B, each EXPERIMENT_ID or EXPERIMENT_ID:TRIAL (a trial id or its #).

    Two trials: scores, paired test and interval, effect size, variables, cost and the
    examples side by side. Two experiments: their best trials on the example set they
    share, and the settings that differ.
    """
    (exp_a, trial_a), (exp_b, trial_b) = _split(a), _split(b)
    if (trial_a is None) != (trial_b is None):
        raise click.UsageError(
            "compare two trials (EXP:TRIAL EXP:TRIAL) or two experiments (EXP EXP), "
            f"not {a!r} and {b!r}"
        )
    if trial_a is None and exp_a == exp_b:
        raise click.UsageError(
            f"A and B are the same experiment: compare two of its trials, "
            f"{exp_a}:0 {exp_a}:c8 (row numbers, candidate numbers cN or trial ids), or "
            "two different experiments"
        )
    from dspex.view import TraceViewer

    store = cli_store(store_url)
    try:
        view = TraceViewer.compare(exp_a, trial_a, exp_b, trial_b, store=store)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    columns = width or max(60, min(shutil.get_terminal_size((100, 24)).columns, 160))
    click.echo(view.to_text(width=columns), nl=False)
