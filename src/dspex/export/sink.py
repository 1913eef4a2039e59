"""What an experiment tells the world as it runs: the :class:`TrialSink` protocol.

The :class:`~dspex.journal.ExperimentJournal` calls a sink after each trial is written to
the store, and once more just before it seals the experiment::

    sink = trial_sink_from_settings()        # None unless export.otlp_endpoint is set
    sink.trial_finished(experiment_header, trial)     # must return at once
    experiment_metadata.update(sink.experiment_finished(experiment_header))

``experiment_finished`` returns metadata to keep on the sealed record (what was
delivered, what was not and how to send it again).
"""

from __future__ import annotations

from typing import Any, Protocol

from dspex.config import Settings, get_settings
from dspex.export.live import LiveOtlpExporter
from dspex.export.otlp import OtlpDestination, require_sdk
from dspex.model import Experiment, Trial

__all__ = ["TrialSink", "trial_sink_from_settings"]


class TrialSink(Protocol):
    """Receives each finished trial of a running experiment, then the experiment's end."""

    def trial_finished(self, experiment: Experiment, trial: Trial) -> None:
        """``trial`` was stored; ``experiment`` is the running experiment's header.
        Called on the thread that finished the trial: must not block."""

    def experiment_finished(self, experiment: Experiment) -> dict[str, Any]:
        """The experiment is about to be sealed; return metadata to keep on it."""


def trial_sink_from_settings(settings: Settings | None = None) -> TrialSink | None:
    """The live OTLP exporter when ``export.otlp_endpoint`` is set, else None.

    Raises :class:`~dspex.errors.ExportError` (with the install command) when an
    endpoint is set but the ``dspex[otel]`` extra is missing, so that the experiment
    fails before it starts rather than losing its export.
    """
    settings = settings or get_settings()
    export = settings.export
    if export.otlp_endpoint is None:
        return None
    require_sdk()
    destination = OtlpDestination(export.otlp_endpoint, project=export.otlp_project)
    return LiveOtlpExporter(destination, flush_timeout=export.otlp_flush_timeout)
