"""A full disk under the file and SQLite stores: a StoreError naming the store and what to
do, what was written before is kept, and the next write after space comes back works.

The disk is filled for real: a small tmpfs mounted in a private mount namespace
(``unshare``), and RLIMIT_FSIZE (a write past the limit fails with EFBIG), each in a
subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _can_mount_tmpfs(where: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {where}"],
        capture_output=True,
    )
    return probe.returncode == 0


def _run(url: str, mode: str, mount: Path | None) -> dict:
    child = [sys.executable, "-m", "tests.store.disk_full_child", url, mode]
    if mount is not None:
        command = " ".join(child)
        child = [
            "unshare",
            "-rm",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=2m tmpfs {mount} && exec {command}",
        ]
    done = subprocess.run(child, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["file", "sqlite"])
@pytest.mark.parametrize("mode", ["tmpfs", "rlimit"])
def test_a_full_disk_is_a_store_error_and_loses_nothing_written_before(tmp_path, backend, mode):
    mount = tmp_path / "disk"
    mount.mkdir()
    if mode == "tmpfs" and not _can_mount_tmpfs(mount):
        pytest.skip("no tmpfs can be mounted here (unshare -rm); the rlimit case still runs")
    where = mount / "store"
    url = f"file://{where}" if backend == "file" else f"sqlite:///{mount / 'store.db'}"
    result = _run(url, mode, mount if mode == "tmpfs" else None)
    if result["failure"] != "NoneType" or mode == "tmpfs" or backend == "sqlite":
        # (under RLIMIT_FSIZE the file store's small trial files still fit: only the
        # large record below fails)
        assert result["failure"] == "StoreUnavailable" and result["store_error"], result
        assert "full" in result["message"] and "retry" in result["message"], result
    assert result["kept"] > 0
    assert result["seal_store_error"] and "retry" in result["seal_message"], result
    assert result["big_absent"], result  # a seal that failed shows nothing
    assert result["read_back_before"] and result["sealed_after"], result
    assert result["verify"] == []
