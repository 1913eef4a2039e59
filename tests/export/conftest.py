"""Fixtures for the export tests: a recorded SIMBA experiment and real receivers.

Phoenix and MLflow run as real servers, each started once per test session on free
loopback ports with their own temporary directories; a server that does not come up in
time fails the tests that need it (with the end of its log), it never skips them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy
import httpx
import pytest

import dspex
from dspex import Experiment, ResultStore
from dspex.offline import exact_match, load_arith

SERVER_START_TIMEOUT = 240.0  # seconds; Phoenix takes ~40 s on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Recorded:
    """A SIMBA compile and an evaluation of its result, archived in a file store."""

    store_url: str
    experiment: Experiment


def record_simba(
    store: ResultStore, *, name: str = "simba-export", examples: int = 16, steps: int = 3
) -> Experiment:
    """The README's experiment, smaller: a SIMBA compile on 16 examples, then an evaluation."""
    train, dev = load_arith()
    program = dspex.offline.ArithQA()
    with dspy.context(lm=dspex.offline_lm()):
        with dspex.experiment(name, program=program, program_name="qa", store=store) as exp:
            optimized = dspy.SIMBA(
                metric=exact_match, bsize=8, num_candidates=3, max_steps=steps, max_demos=2,
                num_threads=4,
            ).compile(program, trainset=train[:examples], seed=0)  # fmt: skip
            exp.evaluate(optimized, dev[:10], exact_match, name="final evaluation")
    return store.get_experiment(exp.id)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    url = "file://" + str(tmp_path_factory.mktemp("store"))
    store = ResultStore.open(url).connect()
    return Recorded(url, record_simba(store))


# -- servers ---------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until_up(self, health_path: str) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with code {self.process.returncode} before answering "
                    f"{self.url}{health_path}; its log ends:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.url + health_path, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        pytest.fail(
            f"{self.name} did not answer {self.url}{health_path} within "
            f"{SERVER_START_TIMEOUT:.0f}s; its log ends:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop the server and every process it started (its own process group)."""
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                if sig == signal.SIGTERM:
                    os.killpg(self.process.pid, signal.SIGKILL)  # workers it left behind
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                pass
            break


def start_server(name: str, command: list[str], env: dict[str, str], workdir: Path) -> Server:
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, stopped whole
        )
    return Server(name, "", process, log)


@dataclass
class Phoenix:
    url: str
    client: Any  # phoenix.client.Client


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    """A real Arize Phoenix server (its own working directory, free ports, no telemetry)."""
    workdir = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    command = [sys.executable, "-m", "phoenix.server.main", "serve"]
    server = start_server("Phoenix", command, env, workdir)
    server.url = f"http://127.0.0.1:{port}"
    try:
        # Importing the client imports the whole phoenix package (~15 s of CPU): done
        # while the server starts, on the other core.
        from phoenix.client import Client

        server.wait_until_up("/healthz")
        yield Phoenix(server.url, Client(base_url=server.url))
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server (SQLite store in its own directory, free port)."""
    workdir = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db",
        "--default-artifact-root", f"file://{workdir}/artifacts",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {
        **os.environ,
        # LiteLLM (imported by MLflow) would fetch a price list from the internet
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # no background job runner (it starts a pool of worker processes)
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    server = start_server("MLflow", command, env, workdir)
    server.url = f"http://127.0.0.1:{port}"
    try:
        server.wait_until_up("/health")
        yield server.url
    finally:
        server.stop()


def phoenix_spans(
    phoenix: Phoenix, project: str, experiment: Experiment, timeout: float = 120.0
) -> list[dict[str, Any]]:
    """The project's spans once Phoenix has stored every span of ``experiment``'s trials
    (it inserts in the background), or what it has at ``timeout``.

    Polls the cheap count of root spans first: a trial's root span is sent after its
    other spans, so once Phoenix has every root it has (nearly) every span.
    """
    from .expect import expected_span_count

    expected = sum(expected_span_count(t) for t in experiment.trials)
    deadline = time.monotonic() + timeout
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            roots = phoenix.client.spans.get_spans(
                project_identifier=project, parent_id="null", limit=len(experiment.trials) + 10
            )
            if len(roots) >= len(experiment.trials):
                spans = _all_spans(phoenix, project, expected)
        except httpx.HTTPStatusError as exc:  # the project appears with its first span
            if exc.response.status_code != 404:
                raise
        if len(spans) >= expected:
            time.sleep(1.0)  # anything beyond the expected would arrive now
            return _all_spans(phoenix, project, expected)
        time.sleep(0.5)
    return spans


def _all_spans(phoenix: Phoenix, project: str, expected: int) -> list[dict[str, Any]]:
    return list(phoenix.client.spans.get_spans(project_identifier=project, limit=expected + 100))
