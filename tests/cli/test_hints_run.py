"""Every command `dspex demo` prints under "Next" runs as printed, from a shell whose PATH
lacks the virtualenv (as after `make demo`, which does not activate it)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SHELL_PATH = "/usr/bin:/bin"


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSPEX_")}
    env.update(PATH=SHELL_PATH, COLUMNS="200", DSPEX_UI_PORT="0")
    return env


def _next_commands(output: str) -> list[str]:
    section = output.split("\nNext\n", 1)[1]
    return [line.split("   # ")[0].strip() for line in section.splitlines() if line.strip()]


def test_the_demo_s_next_commands_run_as_printed(tmp_path):
    dspex = Path(sys.executable).with_name("dspex")
    assert not any(Path(p, "dspex").exists() for p in SHELL_PATH.split(":"))
    demo = subprocess.run(
        [str(dspex), "demo", "--steps", "1"], cwd=tmp_path, env=_environment(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-2000:]
    commands = _next_commands(demo.stdout)
    assert len(commands) == 4
    for command in commands:
        assert shlex.split(command)[0] == str(dspex)  # not on PATH: its path
        if shlex.split(command)[1] == "ui":  # a server: it must start, then we stop it
            server = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=tmp_path, env=_environment(),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert server.stdout is not None
                assert "dspex UI on http://" in server.stdout.readline()
            finally:
                server.terminate()
                server.wait(timeout=30)
            continue
        ran = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=_environment(),
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert ran.returncode == 0, f"{command}: {ran.stderr[-1000:]}"
        assert ran.stdout.strip()


def test_on_path_the_hint_is_plain_dspex(tmp_path, monkeypatch):
    from dspex.cli._demo_summary import dspex_command

    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + SHELL_PATH)
    assert dspex_command() == ("dspex",)
    monkeypatch.setenv("PATH", SHELL_PATH)
    assert dspex_command() == (str(Path(sys.executable).with_name("dspex")),)
