"""Run every ``benchmarks/bench_*.py`` module's ``main()``, or only those named.

python -m benchmarks [--quick] [store ...]
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> None:
    wanted = [a for a in sys.argv[1:] if not a.startswith("-")]
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        print(f"== {path.stem} ==")
        importlib.import_module(f"benchmarks.{path.stem}").main()


if __name__ == "__main__":
    main()
