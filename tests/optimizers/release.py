"""Simulated DSPy releases: the installed DSPy with some of its internals renamed.

A release that renames a local variable of ``SIMBA.compile``, a module global an
optimizer calls, a private method, or a class, changes the source of the functions that
use the name and nothing else. :func:`rename` does exactly that to the running DSPy (for
the duration of a test, through ``monkeypatch``): every function of ``owner`` whose
source mentions an old name is compiled again from its source with the new names, in its
own module's globals, and re-wrapped as DSPy wraps it (``compile`` with DSPy's callbacks,
as a class body definition would be); a renamed global or method is also moved to its
new name.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterable
from typing import Any

import pytest


class _Renamer(ast.NodeTransformer):
    def __init__(self, renames: dict[str, str], *, attributes_only: bool = False) -> None:
        self.renames = renames
        self.attributes_only = attributes_only

    def _new(self, name: str) -> str:
        return self.renames.get(name, name)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if not self.attributes_only:
            node.id = self._new(node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        node.attr = self._new(node.attr)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self._new(node.arg)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.generic_visit(node)
        node.name = self._new(node.name)
        return node

    def visit_alias(self, node: ast.alias) -> ast.AST:
        node.name = self._new(node.name)
        return node


def _compile_wrapper() -> Any:
    from dspy.teleprompt import teleprompt
    from dspy.utils.callback import with_callbacks

    return getattr(teleprompt, "_with_compile_callbacks", with_callbacks)


def _rewritten(
    function: Any,
    renames: dict[str, str],
    transform: ast.NodeTransformer | None,
    attributes_only: bool = False,
) -> Any:
    raw = inspect.unwrap(function)
    tree = ast.parse(textwrap.dedent(inspect.getsource(raw)))
    top = tree.body[0]
    assert isinstance(top, ast.FunctionDef), top
    top.decorator_list = []
    tree = _Renamer(renames, attributes_only=attributes_only).visit(tree)
    if transform is not None:
        tree = transform.visit(tree)
    tree = ast.fix_missing_locations(tree)
    namespace: dict[str, Any] = {}
    exec(
        compile(tree, inspect.getsourcefile(raw) or "<release>", "exec"), raw.__globals__, namespace
    )
    new = namespace[top.name]
    new.__qualname__ = raw.__qualname__.rsplit(".", 1)[0] + "." + top.name
    new.__module__ = raw.__module__
    return new


def _mentions(function: Any, names: Iterable[str]) -> bool:
    try:
        source = inspect.getsource(inspect.unwrap(function))
    except (OSError, TypeError):
        return False
    return any(name in source for name in names)


def rename(
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    renames: dict[str, str],
    *,
    moved: Any = None,
    transform: ast.NodeTransformer | None = None,
    only: tuple[str, ...] = (),
    attributes_only: bool = False,
) -> list[str]:
    """Rename, in every function of class ``owner`` that uses them, each ``old`` name of
    ``renames`` to its new one. ``moved``: the module or class that defines an old name
    (a global or a method), whose attribute moves to the new name. ``transform``: a
    further change of the source of the functions named in ``only``; ``attributes_only``:
    rename ``obj.old`` only (an instance attribute named like a class). Returns the
    functions rewritten (a simulation that rewrites nothing is a broken test)."""
    if moved is not None:
        for old, new in renames.items():
            monkeypatch.setattr(moved, new, vars(moved)[old], raising=False)
            monkeypatch.delattr(moved, old)
    rewritten = []
    for name, value in list(vars(owner).items()):
        chosen = name in only if only else _mentions(value, renames)
        if inspect.isfunction(value) and chosen:
            new = _rewritten(value, renames, transform, attributes_only)
            if name == "compile":
                new = _compile_wrapper()(new)
            monkeypatch.setattr(owner, renames.get(name, name), new, raising=False)
            rewritten.append(name)
    assert rewritten, f"nothing of {owner.__name__} uses {sorted(renames)}"
    return rewritten
