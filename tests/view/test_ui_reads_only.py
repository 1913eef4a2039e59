"""``dspex ui`` only reads its store: it creates none, and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from dspex import ResultStore
from tests.store.test_conformance import make_experiment
from tests.view.test_cli_ui import _env, _free_port


def _files(folder) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _serve_once(url: str, cwd, experiment_id: str | None) -> tuple[int, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dspex", "ui", "--port", str(port), "--store", url],
        cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                pages = [httpx.get(f"http://127.0.0.1:{port}/", timeout=5)]
                if experiment_id:
                    pages.append(
                        httpx.get(f"http://127.0.0.1:{port}/api/experiments/{experiment_id}")
                    )
                assert [p.status_code for p in pages] == [200] * len(pages)
                break
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    return process.returncode, output


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_dspex_ui_leaves_a_store_as_it_found_it(tmp_path, kind):
    url = f"file://{tmp_path / 'store'}" if kind == "file" else f"sqlite:///{tmp_path / 'x.db'}"
    with ResultStore.open(url) as store:
        store.archive_experiment(experiment := make_experiment())
    before = _files(tmp_path)
    code, output = _serve_once(url, tmp_path, experiment.id)
    assert "dspex UI on" in output, output
    assert _files(tmp_path) == before  # no -wal, -shm, lock or index file left behind


def test_dspex_ui_on_a_missing_store_names_it_and_creates_nothing(tmp_path):
    url = f"file://{tmp_path / 'missing'}"
    code, output = _serve_once(url, tmp_path, None)
    assert code == 1 and f"no ResultStore at {url}" in output
    assert list(tmp_path.iterdir()) == []
