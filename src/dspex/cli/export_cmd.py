"""``dspex export EXP_ID``: an experiment out of dspex, to another tool or a file.

    dspex export exp_01... --format csv                           # trials and examples tables
    dspex export exp_01... --format parquet --output results/ --table trials
    dspex export exp_01... --otlp http://127.0.0.1:6006            # Phoenix
    dspex export exp_01... --otlp http://127.0.0.1:5000 --header x-mlflow-experiment-id=1
    dspex export exp_01... --otlp-file exp.otlp.jsonl             # OTLP JSON, a trial a line

Tables: one row per trial, one row per example result (see ``docs/analysis.md``;
Parquet needs pyarrow: ``pip install 'dspex[analysis]'``). With no option at all, the
tables are written as CSV into the current directory.

Sealed and running experiments both export (a running one, the trials it finished).
Each way out is an option of :func:`export_command` and a function in
:data:`DESTINATIONS` under the option's parameter name, taking the experiment, the
option's value and every option's value, and returning the line to print. Another
format is another option and another entry; several may be given at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dspex.cli._store import cli_store, store_option
from dspex.errors import DspexError

if TYPE_CHECKING:
    from dspex.model import Experiment

__all__ = ["DESTINATIONS", "FORMATS", "TABLES", "export_command"]

# dspex.analysis.export's names, spelled here so that `--help` imports no model
# (tests/cli/test_startup.py checks that they agree)
FORMATS = ("csv", "jsonl", "parquet")
TABLES = ("trials", "examples")

Destination = Callable[["Experiment", Any, Mapping[str, Any]], str]


def _to_otlp(experiment: Experiment, endpoint: str, options: Mapping[str, Any]) -> str:
    from dspex.config import get_settings
    from dspex.export import GiveUp, OtlpDestination, send_experiment

    destination = OtlpDestination(
        endpoint,
        project=_project(options),
        headers=_headers(options["headers"]),
        timeout=options.get("timeout"),
    )
    settings = get_settings().export
    rule = GiveUp(after=settings.otlp_give_up_after, seconds=settings.otlp_give_up_seconds)
    try:
        outcome = send_experiment(
            experiment,
            destination,
            trial_ids=_trial_ids(experiment, options),
            give_up=rule,
            phoenix_annotations=options.get("phoenix_annotations"),
        )
    finally:
        destination.shutdown()
    if not outcome.ok:
        raise click.ClickException(
            f"{outcome.summary()}\nsend them again with:\n  "
            + _resend(experiment, outcome.not_sent, destination.shown_url, options)
        )
    return outcome.summary()


def _trial_ids(experiment: Experiment, options: Mapping[str, Any]) -> list[str] | None:
    from dspex.export.selection import TrialRows

    spec = options.get("trials")
    return None if spec is None else TrialRows.of(experiment.trials).select(spec, experiment.id)


def _resend(
    experiment: Experiment, trial_ids: list[str], endpoint: str, options: Mapping[str, Any]
) -> str:
    """The command that sends ``trial_ids`` again with the options given this time (the
    store without its password; header values are never printed: their names are)."""
    from dspex.export.selection import TrialRows, resend_command
    from dspex.redact import redact_url

    extra: list[str] = []
    for name in ("project", "timeout"):
        if options.get(name) is not None:
            extra += [f"--{name}", f"{options[name]:g}" if name == "timeout" else options[name]]
    if options.get("store_url"):
        extra += ["--store", redact_url(options["store_url"])]
    rows = TrialRows.of(experiment.trials)
    command = resend_command(experiment.id, rows, trial_ids, endpoint, extra)
    names = [pair.partition("=")[0].strip() for pair in options.get("headers") or ()]
    if names:
        command += f"  (and your --header options again: {', '.join(names)})"
    return command


def _to_otlp_file(experiment: Experiment, path: Path, options: Mapping[str, Any]) -> str:
    from dspex.export import write_otlp_json

    outcome = write_otlp_json(
        experiment, path, project=_project(options), trial_ids=_trial_ids(experiment, options)
    )
    return (
        f"wrote {outcome.trials} trials ({outcome.spans} spans) of {experiment.id} "
        f"as OTLP JSON to {path}"
    )


def _to_tables(experiment: Experiment, fmt: str, options: Mapping[str, Any]) -> str:
    from dspex.analysis.export import export_experiment

    output = options.get("output") or Path(".")
    paths = export_experiment(experiment, output, fmt, options.get("tables") or tuple(TABLES))
    return "\n".join(str(path) for path in paths)


DESTINATIONS: dict[str, Destination] = {
    "fmt": _to_tables,
    "otlp_endpoint": _to_otlp,
    "otlp_file": _to_otlp_file,
}


def _project(options: Mapping[str, Any]) -> str:
    if options.get("project"):
        return str(options["project"])
    from dspex.config import get_settings

    return get_settings().export.otlp_project


def _headers(pairs: tuple[str, ...]) -> dict[str, str]:
    headers = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(
                f"{name.strip() or pair!r} is not NAME=VALUE (for example "
                "x-mlflow-experiment-id=1)",
                param_hint="--header",
            )
        headers[name.strip()] = value.strip()
    return headers


@click.command("export")
@click.argument("experiment_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Write the trials and per-example results as tables in this format (the default "
    "when no other destination is given: csv).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write <id>.<table>.<format> files into (default: the current one).",
)
@click.option(
    "--table",
    "tables",
    type=click.Choice(TABLES),
    multiple=True,
    help="Only this table (repeat for both; default: trials and examples).",
)
@click.option(
    "--otlp",
    "otlp_endpoint",
    metavar="ENDPOINT",
    help="Send it as OpenTelemetry traces to this OTLP/HTTP receiver (Phoenix, Langfuse, "
    "MLflow, a collector); a base URL gets /v1/traces appended.",
)
@click.option(
    "--otlp-file",
    "otlp_file",
    metavar="PATH",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the same traces as OTLP JSON, one trial (an ExportTraceServiceRequest) a line.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    help="A header of every OTLP request (repeatable), added to "
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS; never printed nor stored.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="How long one trial's request may take, the exporter's retries included "
    "(default: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else 10).",
)
@click.option(
    "--trials",
    metavar="ROWS",
    help="Only these trials (with --otlp or --otlp-file): row numbers (the # column), "
    "ranges and trial ids, comma-separated, such as 0-2,5,9-40. A failed export prints "
    "the command with the trials it did not send.",
)
@click.option(
    "--phoenix-annotations/--no-phoenix-annotations",
    "phoenix_annotations",
    default=None,
    help="With --otlp: also send the scores as Phoenix span annotations, so traces sort "
    "and filter by score in Phoenix (default: when the receiver answers as Phoenix).",
)
@click.option(
    "--project",
    metavar="NAME",
    help="Project of the traces (openinference.project.name); default: export.otlp_project.",
)
@store_option
def export_command(store_url: str | None, experiment_id: str, **options: Any) -> None:
    """Export an experiment: as tables (csv, jsonl, parquet) or as OpenTelemetry traces."""
    chosen = {name: options[name] for name in DESTINATIONS if options.get(name) is not None}
    if options.get("trials") is not None and not {"otlp_endpoint", "otlp_file"} & set(chosen):
        raise click.UsageError("--trials selects the trials that --otlp or --otlp-file send")
    options["store_url"] = store_url
    if not chosen:
        chosen = {"fmt": "csv"}  # nothing asked: the tables, as CSV, here
    store = cli_store(store_url)
    try:
        experiment = store.get_experiment(experiment_id)
    except DspexError as exc:
        raise click.ClickException(str(exc)) from exc
    if not experiment.status.is_final:
        click.echo(
            f"experiment {experiment.id} is {experiment.status.value}: exporting the "
            f"{len(experiment.trials)} trials it has finished"
        )
    for name, value in chosen.items():
        try:
            click.echo(DESTINATIONS[name](experiment, value, options))
        except DspexError as exc:
            raise click.ClickException(str(exc)) from exc
