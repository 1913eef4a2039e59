"""DSPy's progress bars and INFO lines inside an experiment: none when standard output is
not a terminal, one dspex progress line in a notebook, everything with `show`; and DSPy
prints as before once the block has ended."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from tests.view.test_notebook import _kernel_spec

_SCRIPT = """
import logging, sys
import dspy, dspex
from dspex.offline import ArithQA, exact_match, load_arith

train, dev = load_arith()
dspy.configure(lm=dspex.offline_lm())
evaluate = dspy.Evaluate(devset=dev[:12], metric=exact_match, display_progress=True,
                         num_threads=2)
with dspex.experiment("quiet", program_name="qa",
                      store=dspex.ResultStore.open("memory://")) as exp:
    evaluate(ArithQA())
    logging.getLogger("dspy.teleprompt.simba").info("an INFO line inside")
print("BLOCK ENDED", flush=True)
sys.stderr.flush()
evaluate(ArithQA())  # after the block: DSPy's own bar again
"""


def _run(tmp_path: Path, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DSPEX_")}
    environ.update(env)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_SCRIPT)], cwd=tmp_path,
                          env=environ, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + "\n--stderr--\n" + done.stderr


def _bars(text: str) -> int:
    return text.count("%|")


def test_piped_output_has_no_bar_and_no_info_line_inside_the_block(tmp_path):
    out = _run(tmp_path)
    inside, after = out.split("BLOCK ENDED", 1)
    inside += out.split("--stderr--", 1)[1].split("Average Metric")[0]
    assert _bars(inside.split("--stderr--")[0]) == 0
    assert "an INFO line inside" not in out
    assert _bars(after) > 0  # restored: DSPy's bar is back after the block


def test_show_keeps_dspy_s_output(tmp_path):
    out = _run(tmp_path, DSPEX_CAPTURE_DSPY_OUTPUT="show")
    assert "an INFO line inside" in out
    assert _bars(out.split("BLOCK ENDED", 1)[0]) > 0


@pytest.mark.slow
def test_in_a_notebook_the_bars_collapse_into_one_dspex_line(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os\nos.environ.pop('DSPEX_ENV', None)\n" + _SCRIPT.split("print(")[0]
    )]  # fmt: skip
    specs = KernelSpecManager(kernel_dirs=[str(_kernel_spec(tmp_path / "jupyter"))])
    manager = KernelManager(kernel_name="dspex-view-test", kernel_spec_manager=specs)
    NotebookClient(nb, km=manager, timeout=300, kernel_name="dspex-view-test",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    outputs = nb.cells[0]["outputs"]
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert _bars(text) == 0 and "an INFO line inside" not in text
    lines = [o for o in outputs if o["output_type"] == "display_data"]
    assert len(lines) == 1
    assert lines[0]["data"]["text/plain"].startswith("dspex: ")
