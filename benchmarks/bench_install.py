"""What ``pip install dspex`` and each extra add to a virtualenv, on top of DSPy itself.

Each row is a fresh virtualenv (made and filled by uv, from the package registry or uv's
cache): DSPy alone (the reference), then dspex from this source tree, bare and with each
extra. Sizes are the files' bytes (MB = 10^6 bytes). Target (issue 21): the core adds at
most 60 MB to DSPy's own.

    python -m benchmarks install           # needs uv (make bench installs it) and PyPI
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CORE_TARGET_MB = 60
ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("ui", "sql", "postgres", "ray", "otel", "analysis", "demo", "all")


def _uv() -> str:
    for candidate in (ROOT / ".venv" / "uv" / "bin" / "uv", Path(sys.executable).with_name("uv")):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("uv")
    if found is None:
        raise SystemExit("bench_install needs uv: `make bench` installs it into .venv/uv")
    return found


def size_mb(path: Path) -> float:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            file = Path(folder, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total / 1e6


def venv_with(requirements: list[str], where: Path) -> float:
    """The size of a new virtualenv at ``where`` holding ``requirements``."""
    uv = _uv()
    env = {**os.environ, "UV_LINK_MODE": "copy"}  # real files, as pip would leave them
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([uv, "venv", "--quiet", "--python", python, str(where)], check=True, env=env)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(where / "bin" / "python"),
         *requirements],
        check=True, env=env,
    )  # fmt: skip
    return size_mb(where)


def rows() -> list[tuple[str, float, float]]:
    """(what, MB of the virtualenv, MB on top of DSPy alone)."""
    dspy = f"dspy=={importlib.metadata.version('dspy')}"
    found = []
    with tempfile.TemporaryDirectory(prefix="dspex-bench-install-") as tmp:
        base = venv_with([dspy], Path(tmp, "dspy"))
        found.append((f"{dspy} alone", base, 0.0))
        for extra in ("", *EXTRAS):
            target = Path(tmp, extra or "core")
            size = venv_with([dspy, f"{ROOT}[{extra}]" if extra else str(ROOT)], target)
            found.append((f"dspex[{extra}]" if extra else "dspex (core)", size, size - base))
            shutil.rmtree(target)
    return found


def main() -> None:
    print("Install sizes: a fresh virtualenv each, made by uv (MB = 10^6 bytes)")
    found = rows()
    print(f"{'install':<24}  {'venv MB':>8}  {'+ on DSPy MB':>12}")
    for what, size, extra in found:
        print(f"{what:<24}  {size:>8.1f}  {extra:>12.1f}")
    core = next(extra for what, _, extra in found if what == "dspex (core)")
    verdict = "ok" if core <= CORE_TARGET_MB else "OVER"
    print(f"core on top of DSPy: {core:.1f} MB (target {CORE_TARGET_MB} MB: {verdict})")


if __name__ == "__main__":
    main()
