"""`dspex ui` under hostile clients: it cannot be wedged and it stops when told.

Before: 1,100 connections sending their headers slowly, under ``ulimit -n 1024``, left
the server logging ``Too many open files`` in its accept loop; ordinary requests timed
out during the attack and still 30 s after it, and SIGTERM was ignored. The full-size
attacks carry the ``hostile`` marker (CI runs them in ``make test``); the quick tests
below check each defence on its own with small limits.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from dspex import ResultStore
from tests.view.fixtures import DATA_DIR, load
from tests.view.hostile import SlowClients, app_process, child_env, ui_process

# (max_connections, header_timeout, keep_alive_timeout, send_timeout) of the test app
QUICK = ("16", "0.5", "0.5", "1")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One test app with short deadlines, shared by the tests that do not stop it."""
    with app_process(tmp_path_factory.mktemp("quick"), *QUICK) as server:
        yield server


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (data is discarded)."""
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


# -- each defence ---------------------------------------------------------------------------


def trickled_until_dropped(sock: socket.socket, within: float) -> float | None:
    """Send a header line every 0.1 s (never idle, never done); the seconds until the
    server drops the connection, or None."""
    started = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - started < within:
        try:
            sock.sendall(b"X-Slow: 1\r\n")
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
    return None


def test_headers_that_never_finish_and_silent_connections_are_dropped(quick):
    slow = socket.create_connection(("127.0.0.1", quick.port))
    slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    silent = socket.create_connection(("127.0.0.1", quick.port))
    dropped = trickled_until_dropped(slow, 5)
    assert dropped is not None and 0.4 < dropped < 2
    assert closed_by_server(silent, 2)
    response, _ = quick.get("/")
    assert response.status_code == 200


def test_a_kept_alive_connection_that_starts_a_request_and_stalls_is_dropped(quick):
    sock = socket.create_connection(("127.0.0.1", quick.port))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert b"200 OK" in sock.recv(65536)
    sock.sendall(b"GET / HTTP/1.1\r\n")  # the next request, never finished
    dropped = trickled_until_dropped(sock, 5)
    assert dropped is not None and dropped < 2  # keep-alive 0.5 s + headers 0.5 s


def test_at_the_cap_the_connection_waiting_longest_makes_room(tmp_path):
    with app_process(tmp_path, "4", "30", "5", "30") as server:
        with SlowClients(server.port, 4, every=0.2) as attack:
            time.sleep(0.5)
            response, seconds = server.get("/")
            assert response.status_code == 200 and seconds < 1
            time.sleep(0.6)  # the trickle notices the dropped one
            assert attack.alive() == 3


def test_when_every_connection_runs_a_request_a_new_one_gets_503(tmp_path):
    with app_process(tmp_path, "2", "30", "5", "30") as server:
        busy = [
            threading.Thread(target=server.get, args=("/slow?seconds=3",), kwargs={"timeout": 10})
            for _ in range(2)
        ]
        for thread in busy:
            thread.start()
        time.sleep(1)
        response, seconds = server.get("/")
        assert response.status_code == 503 and seconds < 1
        assert "too many connections" in response.text
        assert response.headers["retry-after"] == "1"
        for thread in busy:
            thread.join()
        assert server.get("/")[0].status_code == 200
    assert server.output().count("refusing new ones with 503") == 1  # one line, not one a client


def test_a_client_that_leaves_its_response_unread_is_dropped(quick):
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect(("127.0.0.1", quick.port))
    reader.sendall(b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(3)  # send_timeout is 1 s
    received = 0
    reader.settimeout(5)
    try:
        while chunk := reader.recv(1 << 20):
            received += len(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    assert received < 20_000_000  # dropped with most of it unsent


def test_a_request_still_running_does_not_hold_up_the_stop(tmp_path):
    with app_process(tmp_path) as server:
        thread = threading.Thread(target=lambda: _ignore(server.get, "/slow?seconds=30", 40))
        thread.start()
        time.sleep(1)
        seconds = server.stop(signal.SIGTERM)
        assert seconds < 2, seconds
        assert server.process.returncode == 128 + signal.SIGTERM
        assert "stopping with 1 request(s) still running" in server.output()
        assert "Traceback" not in server.output()


def _ignore(call, *args):
    try:
        call(*args)
    except httpx.TransportError:
        pass


def test_the_soft_open_file_limit_is_raised_toward_the_hard_one(tmp_path):
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (512, 4096));"
        "from dspex.view.web._server import fd_budget; budget, soft = fd_budget();"
        "print(soft, budget, resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()  # fmt: skip
    soft, budget, now = (int(x) for x in out)
    assert soft == now == 4096
    assert 4096 - 96 - 100 < budget < 4096 - 96


def test_the_connection_cap_stays_below_the_open_file_limit(tmp_path):
    env = {"DSPEX_UI_MAX_CONNECTIONS": "5000"}
    with ui_process(tmp_path, "memory://cap", nofile=300, env=env) as ui:
        with SlowClients(ui.port, 400):
            response, _ = ui.get("/")
            assert response.status_code == 200
        response, seconds = ui.get("/")
        assert response.status_code == 200 and seconds < 1
        assert ui.stop() < 2
    output = ui.output()
    assert "not 5000 (ui.max_connections): this process may open 300 files" in output
    assert "Too many open files" not in output and "Traceback" not in output


# -- the attack of the report, full size (hostile) -----------------------------------------


@pytest.fixture
def file_store(tmp_path):
    url = f"file://{tmp_path / 'store'}"
    experiment = load(DATA_DIR / "simba_small.json")
    ResultStore.open(url).archive_experiment(experiment)
    return url, experiment


@pytest.mark.hostile
def test_1100_slow_clients_under_ulimit_1024_then_requests_answer_within_1_s(tmp_path, file_store):
    url, experiment = file_store
    pages = ["/", f"/experiments/{experiment.id}", f"/api/experiments/{experiment.id}"]
    with ui_process(tmp_path, url, nofile=1024) as ui:
        for page in pages:  # the first view imports and parses (seconds, attack or not)
            assert ui.get(page, timeout=60)[0].status_code == 200
        with SlowClients(ui.port, 1100, reconnect=True) as attack:
            time.sleep(12)  # past the header timeout: the dropped come back as new ones
            assert attack.opened > 1100 and attack.alive() > 0  # the attack went on
        left = time.monotonic()
        first, seconds = ui.get(pages[0])
        assert first.status_code == 200 and seconds < 1, seconds
        assert time.monotonic() - left < 1
        for page in pages * 3:
            response, seconds = ui.get(page)
            assert response.status_code == 200 and seconds < 1, (page, seconds)
        assert ui.stop() < 2
    output = ui.output()
    assert "Too many open files" not in output and "Traceback" not in output


@pytest.mark.hostile
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_during_the_attack_exits_within_2_s(tmp_path, file_store, sig):
    url, _ = file_store
    with ui_process(tmp_path, url, nofile=1024) as ui:
        with SlowClients(ui.port, 1100):
            time.sleep(3)
            seconds = ui.stop(sig)
    assert seconds < 2, seconds
    assert ui.process.returncode == 128 + sig
    assert "Traceback" not in ui.output()
