"""The core install works without any extra: a run recorded into the file store, sealed
with its verdict, shown in the notebook and terminal views and by the CLI, in a process
where every extra's packages (and numpy, scipy, optuna) cannot be imported; a command
that needs an extra names it.

A fresh virtualenv would prove the same from the outside (README, "Installing", gives
the sizes measured that way); blocking the imports here runs in seconds on every `make test`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

#: what the extras (and DSPy's optional optimizers' dependencies) bring
BLOCKED = ("sqlalchemy", "alembic", "zstandard", "psycopg", "starlette", "uvicorn", "ray",
           "opentelemetry", "pandas", "pyarrow", "scipy", "numpy", "optuna")  # fmt: skip

# Every finder answers "not here" for a blocked package, as on a machine without it (so
# that importlib.util.find_spec, which DSPy's optional imports ask, returns None).
_BLOCKER = f"""
import sys

class _Without:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

sys.meta_path[:] = [_Without(f) for f in sys.meta_path]
"""

_RUN = """
import dspy
import dspex
from dspex.offline import ArithQA, exact_match, load_arith

dspex.configure(store={"backend": "file", "path": "results"})
train, dev = load_arith()
with dspy.context(lm=dspex.offline_lm()):
    with dspex.experiment("core only", hypothesis="Labeled demos beat zero-shot",
                          program=ArithQA(), pool_size=2) as exp:
        base = exp.evaluate(ArithQA(), dev, exact_match, name="baseline")
        tuned = dspy.LabeledFewShot(k=4).compile(ArithQA(), trainset=train)
        final = exp.evaluate(tuned, dev, exact_match, name="labeled")
stored = dspex.ResultStore.open("file://" + __import__("os").path.abspath("results"))
record = stored.get_experiment(exp.id)
assert record.hypothesis.verdict is not None, "no verdict at seal time"
html = dspex.TraceViewer.view_trial(exp.id, final.id)._repr_html_()
assert "labeled" in html
comparison = dspex.compare(record.trials[0], record.trials[-1])
print("CI", comparison.interval.describe(), "P", comparison.p_value)
print("EXP", exp.id)
blocked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not blocked, blocked
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSPEX_")}
    source = _BLOCKER + f"BLOCKED = {BLOCKED!r}\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", source], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _python(
        f"import sys\nsys.argv = ['dspex', *{list(args)!r}]\nfrom dspex.cli import main\nmain()\n",
        cwd,
    )


def test_the_core_records_seals_and_shows_without_any_extra(tmp_path):
    run = _python(_RUN, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    experiment_id = run.stdout.split("EXP ")[1].split()[0]
    assert "95% CI" in run.stdout

    listed = _cli(tmp_path, "experiments", "ls", "--store", "results")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert experiment_id in listed.stdout and "core only" in listed.stdout

    shown = _cli(tmp_path, "experiments", "show", experiment_id, "--store", "results")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "verdict:" in shown.stdout and "Labeled demos beat zero-shot" in shown.stdout
    timeline = _cli(tmp_path, "experiments", "show", experiment_id, "--trial", "1",
                    "--store", "results")  # fmt: skip
    assert timeline.returncode == 0 and "labeled" in timeline.stdout


def test_commands_that_need_an_extra_name_it(tmp_path):
    ui = _cli(tmp_path, "ui", "--port", "0")
    assert ui.returncode == 1
    assert "pip install 'dspex[ui]'" in ui.stderr and "Traceback" not in ui.stderr
    sql = _cli(tmp_path, "experiments", "ls", "--store", f"sqlite:///{tmp_path}/x.db")
    assert sql.returncode == 1 and "pip install 'dspex[sql]'" in sql.stderr
    demo = _cli(tmp_path, "demo", "--store", "memory://")
    assert demo.returncode == 1 and "pip install 'dspy[numpy]'" in demo.stderr
    mipro = _cli(tmp_path, "demo", "--optimizer", "mipro", "--store", "memory://")
    assert mipro.returncode == 1 and "pip install 'dspy[optuna]'" in mipro.stderr
    rag = _cli(tmp_path, "demo", "--rag", "--store", "memory://")
    assert rag.returncode == 1 and "pip install 'dspy[numpy]'" in rag.stderr
    assert "RAG demo" in rag.stderr and "Traceback" not in rag.stderr
