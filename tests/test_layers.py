"""Packages import downward only, and capture's layers hide no import inside a function.

Data flows one way (DSPy run -> capture -> journal -> front ends -> store -> viewers and
CLI); the import graph follows it. Each package has a rank; a module may import its own
package and packages of a lower rank, never a higher one, never a sibling of the same
rank. Imports under ``if TYPE_CHECKING:`` and inside functions count like any other: a
cycle hidden that way is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dspex

SRC = Path(dspex.__file__).parent

#: rank of each top-level package or module of dspex (lower = more basic)
RANKS = {
    "errors": 0,
    "redact": 0,
    "_version": 0,
    "extras": 1,
    "ids": 1,
    "config": 1,
    "model": 2,
    "workers": 3,
    "store": 3,
    "offline": 3,
    "analysis": 3,
    "capture": 4,
    "journal": 5,
    "export": 3,
    "harness": 6,
    "optimizers": 6,
    "tracking": 7,
    "view": 8,
    "study": 8.5,  # runs experiments (tracking) and shows them (view); the CLI drives it
    "cli": 9,
    "__init__": 10,
    "__main__": 10,
}

#: the capture stack, where a function-level import of dspex would hide a cycle
NO_LAZY_DSPEX_IMPORTS = ("capture", "journal", "harness", "optimizers", "tracking")


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).with_suffix("")
        parts = ["dspex", *relative.parts]
        if parts[-1] == "__init__" and len(parts) > 2:
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


def _dspex_imports(tree: ast.AST, module: str) -> list[tuple[int, str, bool]]:
    """(line, imported dspex module, inside a function) for every import of dspex."""
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module:
                name = child.module
                if child.level:  # relative import: resolve against this package
                    base = module.split(".")[: -child.level] if child.level else []
                    name = ".".join([*base, child.module])
                if name == "dspex" or name.startswith("dspex."):
                    for alias in child.names:
                        target = name if name != "dspex" else f"dspex.{alias.name}"
                        found.append((child.lineno, target, inner))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("dspex."):
                        found.append((child.lineno, alias.name, inner))
            visit(child, inner)

    visit(tree, False)
    return found


def test_every_package_has_a_rank():
    packages = {_package(module) for module, _ in _modules()}
    assert packages <= set(RANKS), f"give these a rank in RANKS: {packages - set(RANKS)}"


def _problems(module: str, source: str, file: str) -> list[str]:
    own = _package(module)
    problems = []
    for line, target, in_function in _dspex_imports(ast.parse(source), module):
        other = _package(target)
        if other == own or other not in RANKS:
            continue
        if RANKS[other] >= RANKS[own]:
            where = "inside a function" if in_function else "at module level"
            problems.append(
                f"{file}:{line} imports {target} ({other}, rank {RANKS[other]}) {where}; "
                f"{own} has rank {RANKS[own]}"
            )
        if in_function and own in NO_LAZY_DSPEX_IMPORTS:
            problems.append(f"{file}:{line} imports {target} inside a function")
    return problems


@pytest.mark.parametrize("module,path", _modules(), ids=[m for m, _ in _modules()])
def test_imports_go_downward_only(module, path):
    problems = _problems(module, path.read_text(), str(path.relative_to(SRC)))
    assert not problems, "\n".join(problems)


def test_the_rule_catches_upward_sibling_and_hidden_imports():
    """The checker itself, on made-up modules."""
    upward = "from dspex.journal import ExperimentJournal\n"
    assert _problems("dspex.capture.callback", upward, "x.py")
    sibling = "from dspex.optimizers import hook_for\n"
    assert _problems("dspex.harness.harness", sibling, "x.py")
    hidden = "def f():\n    from dspex.capture.scoring import score_of\n"
    assert _problems("dspex.journal.journal", hidden, "x.py") == [
        "x.py:2 imports dspex.capture.scoring inside a function"
    ]
    downward = "from dspex.capture.scoring import score_of\n"
    assert _problems("dspex.journal.journal", downward, "x.py") == []
