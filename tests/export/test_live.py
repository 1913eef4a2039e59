"""The live exporter: trials sent as they finish, never holding up the recording, never lost."""

from __future__ import annotations

import logging
import threading
import time

import dspy
import pytest
from click.testing import CliRunner

import dspex
from dspex import ResultStore
from dspex.cli import main
from dspex.export import LiveOtlpExporter, OtlpDestination
from dspex.offline import ArithQA, exact_match, load_arith
from tests.view.fixtures import simba_experiment

from .conftest import free_port, phoenix_spans, record_simba
from .expect import expected_span_count
from .receiver import LocalReceiver


def header_of(experiment: dspex.Experiment) -> dspex.Experiment:
    return experiment.replace(trials=(), best_trial_id=None, summary=None)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_refused_send_is_retried_and_every_trial_delivered():
    experiment = simba_experiment()
    header = header_of(experiment)
    with LocalReceiver(statuses=[400, 200]) as receiver:
        exporter = LiveOtlpExporter(OtlpDestination(receiver.url), retry_delay=0.01)
        for trial in experiment.trials:
            exporter.trial_finished(header, trial)
        # (the end of an experiment does not wait for a receiver that has just failed)
        wait_for(lambda: len(receiver.accepted) == len(experiment.trials))
        report = exporter.experiment_finished(header)["otlp_export"]
    assert report["delivered"] == report["trials"] == len(experiment.trials)
    assert report["undelivered"] == [] and report["error"] is None
    assert len(receiver.requests) == len(experiment.trials) + 1  # the refused one again
    assert len(receiver.spans) == sum(expected_span_count(t) for t in experiment.trials)


def test_a_trial_refused_every_time_is_reported_with_the_command_that_resends_it(caplog):
    experiment = simba_experiment()
    with LocalReceiver(statuses=[400]) as receiver:
        exporter = LiveOtlpExporter(OtlpDestination(receiver.url), attempts=2, retry_delay=0.01)
        header = header_of(experiment)
        for trial in experiment.trials:
            exporter.trial_finished(header, trial)
        wait_for(lambda: len(receiver.requests) >= 2)
        with caplog.at_level(logging.WARNING, logger="dspex.export.live"):
            report = exporter.experiment_finished(header)["otlp_export"]
            exporter.trial_finished(header, experiment.trials[0])  # too late: said, not queued
    assert report["delivered"] == 0
    assert report["undelivered"] == [t.id for t in experiment.trials]
    assert report["error"] == "HTTP 400 Bad Request"
    assert report["resend"] == f"dspex export {experiment.id} --otlp {receiver.url}/v1/traces"
    assert f"4 of 4 trials of experiment {experiment.id} were not delivered" in caplog.text
    assert "finished after its experiment" in caplog.text


def test_a_send_cut_short_by_the_end_does_not_hide_the_receivers_failure():
    experiment = simba_experiment()
    header = header_of(experiment)
    sending, stopped = threading.Event(), threading.Event()

    class StoppedMidway(OtlpDestination):
        """The second trial is still on its way when the experiment ends."""

        def send(self, spans):
            if self.sends:
                sending.set()
                stopped.wait(10)
            self.sends += 1
            return super().send(spans)

        def shutdown(self):
            super().shutdown()
            stopped.set()

    with LocalReceiver(statuses=[400]) as receiver:
        destination = StoppedMidway(receiver.url)
        destination.sends = 0
        exporter = LiveOtlpExporter(destination, attempts=1)
        for trial in experiment.trials[:2]:
            exporter.trial_finished(header, trial)
        assert sending.wait(10)
        report = exporter.experiment_finished(header)["otlp_export"]
    assert report["undelivered"] == [t.id for t in experiment.trials[:2]]
    assert report["error"] == "HTTP 400 Bad Request"  # not the stop of the second send


def test_a_receiver_that_never_answers_does_not_hold_up_the_recording():
    train, dev = load_arith()
    store = ResultStore.open("memory://")
    with LocalReceiver(hang=True) as receiver:
        dspex.configure(export={"otlp_endpoint": receiver.url, "otlp_flush_timeout": 0.2})
        with dspex.experiment("hanging", program_name="qa", store=store) as exp:
            program = ArithQA()
            with dspy.context(lm=dspex.offline_lm()):
                exp.evaluate(program, dev[:4], exact_match, name="first")
                exp.evaluate(program, dev[4:8], exact_match, name="second")
    experiment = store.get_experiment(exp.id)
    assert experiment.status.value == "completed"
    report = experiment.metadata["otlp_export"]
    assert report["trials"] == 2 and report["delivered"] == 0
    assert report["undelivered"] == [t.id for t in experiment.trials]


@pytest.mark.slow
def test_live_export_to_phoenix_delivers_each_trial(phoenix, tmp_path):
    store = ResultStore.open(f"file://{tmp_path}/store").connect()
    dspex.configure(export={"otlp_endpoint": phoenix.url, "otlp_project": "live"})
    experiment = record_simba(store, name="simba-live", examples=8, steps=2)
    report = experiment.metadata["otlp_export"]
    assert report["delivered"] == report["trials"] == len(experiment.trials)
    assert report["undelivered"] == []
    expected = sum(expected_span_count(t) for t in experiment.trials)
    spans = phoenix_spans(phoenix, "live", experiment)
    assert len(spans) == expected
    assert {s["attributes"]["session.id"] for s in spans if s.get("parent_id") is None} == {
        experiment.id
    }


@pytest.mark.slow
def test_receiver_down_the_recording_finishes_reports_and_dspex_export_delivers_later(
    phoenix, tmp_path, caplog
):
    store = ResultStore.open(f"file://{tmp_path}/store").connect()
    down = f"http://127.0.0.1:{free_port()}"
    # a long flush timeout: were a failing receiver waited for, the recording would take it
    dspex.configure(export={"otlp_endpoint": down, "otlp_flush_timeout": 120})
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="dspex.export.live"):
        experiment = record_simba(store, name="simba-receiver-down", examples=8, steps=2)
    assert time.monotonic() - started < 90
    report = experiment.metadata["otlp_export"]
    assert report["trials"] == len(experiment.trials) and report["delivered"] == 0
    assert sorted(report["undelivered"]) == sorted(t.id for t in experiment.trials)
    assert report["error"] == "could not connect: [Errno 111] Connection refused"
    assert "were not delivered" in caplog.text

    runner = CliRunner()
    shown = runner.invoke(main, ["experiments", "show", experiment.id, "--store", store.url])
    assert f"{len(experiment.trials)} NOT delivered" in shown.output
    assert report["resend"] in shown.output

    sent = runner.invoke(
        main,
        ["export", experiment.id, "--otlp", phoenix.url, "--project", "later", "--store",
         store.url],
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    expected = sum(expected_span_count(t) for t in experiment.trials)
    assert len(phoenix_spans(phoenix, "later", experiment)) == expected
