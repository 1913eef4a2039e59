"""An export to a receiver that is not there gives up, names what it did not send and
prints the exact command that sends it; the live exporter reports the same way.

A dead receiver used to cost the request timeout per trial (24 s for 8 trials refused,
40 s unanswered, about an hour for 1,000). The long variants, with the default timeout
and 1,000 trials, carry the ``hostile`` marker (CI runs them in ``make test``).
"""

from __future__ import annotations

import logging
import shlex
import time
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

import dspex
from dspex import Experiment, ProgramInfo, ResultStore, Trial, new_id
from dspex.cli import main
from dspex.export import GiveUp, LiveOtlpExporter, OtlpDestination, send_experiment

from .conftest import free_port
from .receiver import LocalReceiver

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def many_trials(n: int) -> Experiment:
    experiment_id = new_id("exp")
    trials = tuple(
        Trial(experiment_id=experiment_id, index=i, name=f"t{i}", started_at=T0, score=0.5)
        for i in range(n)
    )
    return Experiment(
        id=experiment_id,
        name="many",
        program=ProgramInfo(name="qa"),
        status="completed",
        trials=trials,
    )


def stored(n: int) -> tuple[Experiment, str]:
    experiment = many_trials(n)
    url = f"memory://give-up-{experiment.id}"
    ResultStore.open(url).archive_experiment(experiment)
    return experiment, url


def export(*args: str, env: dict[str, str] | None = None) -> tuple[object, float]:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["export", *args], env=env)
    return result, time.monotonic() - started


def resend_line(output: str) -> str:
    lines = output.splitlines()
    return lines[lines.index("send them again with:") + 1].strip()


def test_a_refused_connection_stops_after_three_trials_not_after_all(tmp_path):
    experiment, url = stored(50)
    down = f"http://127.0.0.1:{free_port()}"
    result, seconds = export(experiment.id, "--otlp", down, "--timeout", "1", "--store", url)
    assert result.exit_code == 1
    out = result.output
    assert "gave up after 3 trials in a row could not reach it" in out
    assert "(export.otlp_give_up_after = 3)" in out
    assert "Connection refused" in out
    assert "50 not delivered (trials 0–49)" in out
    command = f"dspex export {experiment.id} --otlp {down}/v1/traces --timeout 1 --store {url}"
    assert resend_line(out) == command
    assert "Traceback" not in out
    assert seconds < 10  # three trials of at most one second each, not fifty


def test_what_was_sent_is_not_sent_again_and_the_command_sends_the_rest():
    experiment, url = stored(12)
    with LocalReceiver(statuses=[200] * 4 + [503]) as dying:  # a gateway: the receiver is gone
        result, _ = export(experiment.id, "--otlp", dying.url, "--timeout", "0.5", "--store", url)
    assert result.exit_code == 1
    assert "exported 4 of 12 trials" in result.output
    assert "HTTP 503 Service Unavailable" in result.output
    assert "8 not delivered (trials 4–11)" in result.output
    command = resend_line(result.output)
    assert "--trials 4-11" in command
    with LocalReceiver() as receiver:
        args = shlex.split(command.replace(dying.url, receiver.url))
        assert args[:2] == ["dspex", "export"]
        again = CliRunner().invoke(main, args[1:])
        assert again.exit_code == 0, again.output
        assert "exported 8 of 8 trials" in again.output
    sent = {span.name for span in receiver.spans if not span.parent_span_id}
    assert len(receiver.accepted) == 8 and len(sent) >= 1


def test_a_receiver_that_answers_with_refusals_is_not_given_up_on():
    experiment = many_trials(6)
    with LocalReceiver(statuses=[400]) as receiver:
        outcome = send_experiment(experiment, OtlpDestination(receiver.url), give_up=GiveUp())
    assert outcome.gave_up is None
    assert len(receiver.requests) == 6  # each trial refused on its own merits
    assert outcome.not_sent == [t.id for t in experiment.trials]


@pytest.mark.parametrize("after", [2, 3])
def test_a_success_between_failures_starts_the_count_again(after):
    experiment = many_trials(7)
    statuses = [503, 503, 200, 503, 503, 200, 200]  # one request a trial: 0.3 s leaves no retry
    with LocalReceiver(statuses=statuses) as receiver:
        destination = OtlpDestination(receiver.url, timeout=0.3)
        outcome = send_experiment(experiment, destination, give_up=GiveUp(after=after))
    if after == 3:
        assert outcome.gave_up is None
        assert outcome.delivered == [experiment.trials[i].id for i in (2, 5, 6)]
    else:
        assert outcome.gave_up is not None and outcome.gave_up.startswith("gave up after 2")
        assert len(receiver.requests) == 2
        assert outcome.not_sent == [t.id for t in experiment.trials]


def test_trials_names_rows_ranges_and_ids_and_refuses_what_is_not_there():
    experiment, url = stored(5)
    with LocalReceiver() as receiver:
        trial_id = experiment.trials[4].id
        result, _ = export(experiment.id, "--otlp", receiver.url, "--trials", f"0-1,3,{trial_id}",
                           "--store", url)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "exported 4 of 4 trials" in result.output
    result, _ = export(experiment.id, "--otlp", receiver.url, "--trials", "7", "--store", url)
    assert result.exit_code == 1
    assert f"--trials: '7' names no trial of experiment {experiment.id} (rows run 0–4" in (
        result.output
    )
    result, _ = export(experiment.id, "--trials", "1", "--store", url)
    assert result.exit_code == 2 and "--trials selects the trials that --otlp" in result.output


def test_header_values_never_appear_in_the_command_only_their_names():
    experiment, url = stored(3)
    down = f"http://127.0.0.1:{free_port()}"
    result, _ = export(experiment.id, "--otlp", down, "--timeout", "0.3", "--header",
                       "Authorization=Bearer s3cret", "--store", url)  # fmt: skip
    assert result.exit_code == 1
    assert "s3cret" not in result.output
    assert "(and your --header options again: Authorization)" in result.output


def test_the_live_exporter_reports_the_same_way(caplog):
    experiment = many_trials(6)
    header = experiment.replace(trials=())
    with LocalReceiver(statuses=[200, 200, 400]) as receiver:
        exporter = LiveOtlpExporter(OtlpDestination(receiver.url), attempts=1, retry_delay=0.01)
        for trial in experiment.trials:
            exporter.trial_finished(header, trial)
        deadline = time.monotonic() + 30
        while len(receiver.requests) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        with caplog.at_level(logging.WARNING, logger="dspex.export.live"):
            report = exporter.experiment_finished(header)["otlp_export"]
    assert report["undelivered"] == [t.id for t in experiment.trials[2:]]
    assert report["resend"] == (
        f"dspex export {experiment.id} --otlp {receiver.url}/v1/traces --trials 2-5"
    )
    assert "trials 2–5; they are in the store" in caplog.text


# -- long: the default timeout, 1,000 trials -----------------------------------------------


@pytest.mark.hostile
@pytest.mark.parametrize("kind", ["refused", "never answers"])
def test_a_whole_export_to_a_dead_receiver_fails_within_30_s_whatever_the_trials(kind):
    experiment, url = stored(1000)
    if kind == "refused":
        result, seconds = export(experiment.id, "--otlp", f"http://127.0.0.1:{free_port()}",
                                 "--store", url)  # fmt: skip
    else:
        with LocalReceiver(hang=True) as silent:
            result, seconds = export(experiment.id, "--otlp", silent.url, "--store", url)
    assert result.exit_code == 1
    assert seconds < 30, f"{kind}: {seconds:.1f}s"
    assert "1000 not delivered (trials 0–999)" in result.output
    assert "gave up" in result.output
    assert resend_line(result.output).startswith(f"dspex export {experiment.id} --otlp ")
    assert "--trials" not in resend_line(result.output)  # all of them


@pytest.mark.hostile
def test_the_time_rule_holds_with_a_long_request_timeout():
    experiment = many_trials(1000)
    with LocalReceiver(hang=True) as silent:
        destination = OtlpDestination(silent.url, timeout=8)
        started = time.monotonic()
        outcome = send_experiment(experiment, destination, give_up=GiveUp(after=100, seconds=12))
        seconds = time.monotonic() - started
        destination.shutdown()
    assert outcome.gave_up is not None
    assert "no trial reached it for 1" in outcome.gave_up
    assert "(export.otlp_give_up_seconds = 12)" in outcome.gave_up
    assert seconds < 12 + 2
    assert len(outcome.not_sent) == 1000


def test_the_settings_are_what_the_command_uses():
    experiment, url = stored(20)
    down = f"http://127.0.0.1:{free_port()}"
    env = {"DSPEX_EXPORT_OTLP_GIVE_UP_AFTER": "1"}
    dspex.config.reset()  # read the environment again, as a new `dspex` process would
    result, seconds = export(experiment.id, "--otlp", down, "--timeout", "1", "--store", url,
                             env=env)  # fmt: skip
    assert "gave up after 1 trial in a row could not reach it (export.otlp_give_up_after = 1)" in (
        result.output
    )
    assert seconds < 5
