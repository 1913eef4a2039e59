"""How fast the command line answers: process start to exit, beside ``python -c pass``.

Targets (issue 21): ``dspex --help`` and every command's ``--help`` under 0.3 s,
``dspex experiments ls`` on the demo's store under 0.6 s. Each row runs the command as
a user would (the installed ``dspex`` script, a new process each time, its bytecode
already compiled by a first run) and prints the fastest and the median wall time of
the repeats, the CPU time of the fastest (user + system: what the machine's other load
does not inflate), and the ratio of the fastest to the fastest ``python -c pass``.
``mlflow --help`` is printed beside them when MLflow is installed.

    python -m benchmarks cli               # DSPEX_BENCH_SCALE=0.3: fewer repeats
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPEATS = 9
HELP_TARGET = 0.3
LS_TARGET = 0.6


def _bin(name: str) -> str:
    """The executable ``name`` next to this interpreter (the virtualenv's), else on PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def _environment(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSPEX_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode is cached
    env["COLUMNS"] = "120"
    return env


def run_once(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``argv``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(argv: Sequence[str], cwd: Path, env: dict[str, str], repeats: int) -> dict[str, float]:
    run_once(argv, cwd, env)  # warm: bytecode written, files in the page cache
    samples = [run_once(argv, cwd, env) for _ in range(repeats)]
    best = min(samples)
    return {"best": best[0], "median": statistics.median(s[0] for s in samples), "cpu": best[1]}


def help_commands() -> list[tuple[str, ...]]:
    """``()`` (the top level) and every command and subcommand, as ``--help`` runs them."""
    import click

    from dspex.cli import COMMANDS

    paths: list[tuple[str, ...]] = [()]
    for entry in COMMANDS:
        command = entry.load()
        paths.append((entry.name,))
        if isinstance(command, click.Group):
            paths += [(entry.name, name) for name in sorted(command.commands)]
    return paths


def demo_store(root: Path) -> str:
    """A file store holding what ``dspex demo`` records (SIMBA on the offline LM)."""
    url = f"file://{root / 'dspex_results'}"
    env = _environment(root)
    subprocess.run(
        [_bin("dspex"), "demo", "--store", url], cwd=root, env=env, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return url


def rows(repeats: int) -> list[tuple[str, dict[str, float], float | None]]:
    """(label, timings, target) for every row of the table, ``python -c pass`` first."""
    with tempfile.TemporaryDirectory(prefix="dspex-bench-cli-") as tmp:
        root = Path(tmp)
        env = _environment(root)
        dspex = _bin("dspex")
        found = [("python -c pass", measure([sys.executable, "-c", "pass"], root, env, repeats),
                  None)]  # fmt: skip
        for path in help_commands():
            label = " ".join(["dspex", *path, "--help"])
            found.append((label, measure([dspex, *path, "--help"], root, env, repeats),
                          HELP_TARGET))  # fmt: skip
        demo_store(root)  # in ./dspex_results, where `ls` looks without --store
        ls = measure([dspex, "experiments", "ls"], root, env, repeats)
        found.append(("dspex experiments ls (demo store)", ls, LS_TARGET))
        mlflow = _bin("mlflow")
        if shutil.which(mlflow) or Path(mlflow).exists():
            found.append(("mlflow --help (reference)",
                          measure([mlflow, "--help"], root, env, repeats), None))  # fmt: skip
    return found


def table(found: list[tuple[str, dict[str, float], float | None]]) -> str:
    floor = found[0][1]["best"]
    width = max(len(label) for label, _, _ in found)
    lines = [
        f"{'command':<{width}}  {'best s':>7}  {'median s':>8}  {'cpu s':>6}  "
        f"{'x pass':>6}  target",
    ]
    for label, t, target in found:
        verdict = "" if target is None else (
            f"{target:.1f} s {'ok' if t['best'] < target else 'OVER'}"
        )  # fmt: skip
        lines.append(
            f"{label:<{width}}  {t['best']:>7.3f}  {t['median']:>8.3f}  {t['cpu']:>6.3f}  "
            f"{t['best'] / floor:>6.1f}  {verdict}"
        )
    return "\n".join(lines)


def main() -> None:
    scale = float(os.environ.get("DSPEX_BENCH_SCALE", "1"))
    repeats = max(2, round(REPEATS * scale))
    print(f"CLI start-up, process start to exit, fastest and median of {repeats} runs")
    print(table(rows(repeats)))


if __name__ == "__main__":
    main()
