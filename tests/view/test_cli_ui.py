"""``python -m dspex ui`` as a subprocess: it serves, and it refuses to expose itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

import dspex


def _env() -> dict[str, str]:
    src = str(Path(dspex.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSPEX_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dspex_ui_serves_the_list_page(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dspex", "ui", "--port", str(port), "--store", "memory://cli"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "dspex ui did not answer within 30 s"
                time.sleep(0.2)
        assert response.status_code == 200
        assert "No experiment in this store yet" in response.text
        assert response.headers["content-security-policy"]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert f"dspex UI on http://localhost:{port}/ over memory://cli" in output


def test_dspex_ui_refuses_a_public_host_without_a_token(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dspex", "ui", "--host", "0.0.0.0", "--store", "memory://"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "refusing to serve the dspex UI on '0.0.0.0' without an access token" in (result.stderr)


def test_a_busy_port_is_one_clear_error_naming_a_free_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "dspex", "ui", "--port", str(port), "--store", "memory://"],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "dspex UI on" not in result.stdout  # no address printed for a server that never ran
    message = result.stderr.strip()
    assert message.startswith(f"Error: port {port} on 127.0.0.1 is in use by another program")
    suggested = int(message.split("try --port ")[1].split()[0])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", suggested))  # the suggested port is free
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr
