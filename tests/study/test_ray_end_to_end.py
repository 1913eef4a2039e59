"""A study on a Ray cluster into PostgreSQL, a worker killed and the study stopped midway,
then resumed; and the same study on the local engine, cell for cell.

The cluster is started as a user would start one (``ray start --head``, a subprocess with
its own port and temp directory, token auth off so that a token left in ~/.ray by other
clusters does not apply), and stopped at the end. The study's LM is the one written in
``tests/study/lms.py``: it answers as the offline engine does, counts its own calls, and
one call in one Ray worker waits to be killed with SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dspex import ResultStore
from dspex.model.study import AttemptOutcome, CellStatus, StudyStatus
from dspex.study.cell import study_tag
from tests.study.conftest import spec_data, toml_text
from tests.study.lms import ENV, calls_answered

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Head:
    address: str
    env: dict[str, str]
    lm_dir: Path


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[Head]:
    lm_dir = tmp_path / "lm"
    lm_dir.mkdir()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        ENV: str(lm_dir),
    }
    # Ray gives its own processes 30 s to register; on a machine busy with other work
    # that can run out, so a head that fails to start is started again (twice at most).
    for attempt in range(3):
        head, temp, port = _start_head(env, tmp_path / f"ray-head-{attempt}.log")
        if head is not None:
            break
    else:
        raise AssertionError((tmp_path / "ray-head-2.log").read_text()[-3000:])
    try:
        yield Head(f"127.0.0.1:{port}", {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}, lm_dir)
    finally:
        _stop(head, temp)


def _start_head(env: dict[str, str], log: Path) -> tuple[subprocess.Popen | None, Path, int]:
    port = _free_port()
    temp = Path(f"/tmp/dspex-ray-{uuid.uuid4().hex[:8]}")  # short: Ray's socket paths
    command = [
        str(RAY), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
        "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
        f"--temp-dir={temp}", "--object-store-memory=150000000",
    ]  # fmt: skip
    with log.open("w") as out:
        head = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 180
    while not (temp / "ray_current_cluster").exists() or "--block" not in log.read_text():
        if head.poll() is not None or time.monotonic() > deadline:
            _stop(head, temp)
            return None, temp, port
        time.sleep(0.5)
    return head, temp, port


def _stop(head: subprocess.Popen, temp: Path) -> None:
    """Stop the head we started: its process group, then any process of its session left."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            break
        try:
            head.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    for pid in _pids_using(str(temp)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(temp, ignore_errors=True)


def _pids_using(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def _spec(tmp_path: Path, name: str, **run: object) -> Path:
    data = spec_data(name=name)
    data["run"] = run
    path = tmp_path / f"{name}.toml"
    path.write_text(toml_text(data))
    return path


def _sealed(store: ResultStore, name: str) -> int:
    try:
        return sum(c.status is CellStatus.SEALED for c in store.get_study(name).cells)
    except Exception:  # noqa: BLE001 - not saved yet
        return 0


def _wait_for(condition, driver: subprocess.Popen, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if driver.poll() is not None:
            out, err = driver.communicate()
            raise AssertionError(f"the study ended before {what}: {out}\n{err}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_study_on_ray_survives_a_killed_worker_and_ctrl_c_then_matches_the_local_engine(
    tmp_path, ray_head, postgres_url
):
    spec = _spec(tmp_path, "ray-study", max_concurrent=2)
    command = [sys.executable, "-m", "dspex", "study", "run", str(spec), "--store", postgres_url,
               "--engine", "ray", "--address", "auto"]  # fmt: skip
    store = ResultStore.open(postgres_url)
    (ray_head.lm_dir / "kill-once").touch()  # the first LM call in a Ray worker waits for us
    driver = subprocess.Popen(command, cwd=tmp_path, env=ray_head.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        victim = ray_head.lm_dir / "victim"
        _wait_for(victim.exists, driver, 240, "a cell's LM call in a Ray worker")
        time.sleep(0.2)  # the pid is written whole
        os.kill(int(victim.read_text()), signal.SIGKILL)
        _wait_for(lambda: _sealed(store, "ray-study") >= 4, driver, 300, "four sealed cells")
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 130, out + err
    stopped = store.get_study("ray-study")
    assert stopped.status is StudyStatus.INTERRUPTED and stopped.owner is None
    crashed = [
        (cell, attempt)
        for cell in stopped.cells
        for attempt in cell.attempts
        if attempt.outcome is AttemptOutcome.CRASHED
    ]
    assert len(crashed) == 1, [c.attempts for c in stopped.cells]
    cell, attempt = crashed[0]
    assert attempt.number == 1 and "the Ray worker died" in attempt.cause
    assert all(c.status is not CellStatus.RUNNING for c in stopped.cells)

    again = subprocess.run(command, cwd=tmp_path, env=ray_head.env, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    final = store.get_study("ray-study")
    assert final.status is StudyStatus.COMPLETED and final.verdict is not None
    assert [c.status for c in final.cells] == [CellStatus.SEALED] * 12
    linked = [c.experiment_id for c in final.cells]
    tagged = store.query_experiments(tags=[study_tag("ray-study")])
    assert len(set(linked)) == 12 and sorted(s.id for s in tagged) == sorted(linked)
    trial_ids: set[str] = set()
    for summary in tagged:
        experiment = store.get_experiment(summary.id)
        assert experiment.status.value == "completed" and summary.sealed
        link = experiment.metadata["study"]
        assert final.cell(link["arm"], link["seed"]).experiment_id == experiment.id
        evaluations = [t.name for t in experiment.trials if t.metadata.get("role") == "evaluation"]
        assert evaluations == ["baseline", "optimized"]  # nothing of the killed attempt kept
        assert summary.trial_count == len(experiment.trials)
        ids = {t.id for t in experiment.trials}
        assert not ids & trial_ids
        trial_ids |= ids
    retried = final.cell(cell.arm, cell.seed)  # under the id of the attempt that died
    assert retried.attempts[0].outcome is AttemptOutcome.CRASHED
    assert retried.experiment_id == attempt.experiment_id and len(retried.attempts) >= 2

    # the same study on the local engine: the same score in every cell, and every LM call
    # the LM answered is recorded
    shutil.rmtree(ray_head.lm_dir / "calls")
    local = _spec(tmp_path, "local-study", max_concurrent=2)
    sqlite = f"sqlite:///{tmp_path / 'local.db'}"
    done = subprocess.run([sys.executable, "-m", "dspex", "study", "run", str(local), "--store",
                           sqlite, "--engine", "local"], cwd=tmp_path, env=ray_head.env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    twin = ResultStore.open(sqlite).get_study("local-study")
    scores = {c.key: c.result.score for c in final.cells if c.result}
    assert {c.key: c.result.score for c in twin.cells if c.result} == scores
    assert len(set(scores.values())) > 1  # the seeds did something
    recorded = sum(c.result.lm_calls for c in twin.cells if c.result)
    assert recorded == calls_answered(ray_head.lm_dir) > 0
