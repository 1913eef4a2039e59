"""A throwaway PostgreSQL cluster for the tests, in a temporary directory.

``initdb`` and ``pg_ctl`` from Debian's ``postgresql`` package (``/usr/lib/postgresql/
<version>/bin``) or from PATH make a cluster with trust authentication, listening on
127.0.0.1 at a free port and on a socket in its own directory; it is stopped and deleted
when the test session ends. Nothing outside that directory is read or changed: no
system cluster, no ``pg_hba.conf``. PostgreSQL refuses to run as root, so as root the
cluster runs as the ``postgres`` system user (the Debian package creates it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["MISSING", "binaries", "throwaway_cluster"]

MISSING = (
    "PostgreSQL's initdb and pg_ctl were not found (neither in /usr/lib/postgresql/*/bin "
    "nor on PATH): install Debian's postgresql package (`make test` does, through "
    "scripts/system-deps.sh), or set DSPEX_TEST_POSTGRES_URL to a server to use"
)


def binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, newest version first."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()],
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


@contextmanager
def throwaway_cluster(bin_dir: Path) -> Iterator[str]:
    """A running cluster's admin URL (database ``postgres``, user ``postgres``)."""
    root = Path(tempfile.mkdtemp(prefix="dspex-test-pg-"))
    owner = None
    if os.geteuid() == 0:
        owner = "postgres"
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, port = root / "data", _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                                  "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                                 owner), **run)  # fmt: skip
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=1000"
        )
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                                  "-l", str(root / "server.log"), "-w", "start"], owner),
                       **run)  # fmt: skip
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m",
                                      "immediate", "-w", "stop"], owner),
                           capture_output=True, timeout=120)  # fmt: skip
    except subprocess.CalledProcessError as exc:
        log = root / "server.log"
        raise RuntimeError(
            f"the test PostgreSQL cluster did not start ({exc.cmd[0]}): {exc.stderr}"
            + (log.read_text(errors="replace")[-2000:] if log.exists() else "")
        ) from exc
    finally:
        shutil.rmtree(root, ignore_errors=True)
