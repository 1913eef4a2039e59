"""The import contracts in pyproject.toml (``[tool.importlinter]``) hold, and cover dspex.

Data flows one way (DSPy run -> capture -> journal -> front ends -> store -> viewers and
CLI); the import graph follows it. import-linter sees every import (inside functions and
under ``if TYPE_CHECKING:`` too), between packages (the ``layers`` contract) and between
the modules inside each package, at any depth (``acyclic_siblings``). ``make check`` runs
the same contracts with ``lint-imports``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import dspex

ROOT = Path(__file__).parents[1]
PYPROJECT = ROOT / "pyproject.toml"
SRC = Path(dspex.__file__).parent


@pytest.fixture(scope="module", autouse=True)
def _configured():
    """import-linter's own set-up, as its command line does it."""
    from importlinter import configuration

    configuration.configure()


def _contracts() -> dict[str, dict]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def test_the_import_contracts_hold(capsys):
    from importlinter.application.use_cases import lint_imports

    kept = lint_imports(config_filename=str(PYPROJECT), no_logo=True, cache_dir=None)
    assert kept, capsys.readouterr().out


def test_every_module_of_dspex_has_a_layer():
    layers = _contracts()["layers"]["layers"]
    listed = {name.strip() for layer in layers for name in layer.split("|")}
    top = {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    top |= {p.parent.name for p in SRC.glob("*/__init__.py")}
    assert top - listed == set(), "give these a layer in pyproject's [tool.importlinter]"


def _graph():
    import grimp

    return grimp.build_graph("dspex")


def _kept(contract_id: str, graph) -> bool:
    from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
    from importlinter.contracts.layers import LayersContract

    options = dict(_contracts()[contract_id])
    kind = {"layers": LayersContract, "acyclic_siblings": AcyclicSiblingsContract}[options["type"]]
    name = options.pop("name")
    for key in ("id", "type"):
        options.pop(key)
    contract = kind(
        name=name, session_options={"root_packages": ["dspex"]}, contract_options=options
    )
    return contract.check(graph, verbose=False).kept


@pytest.mark.parametrize(
    ("contract", "importer", "imported"),
    [
        ("layers", "dspex.capture.callback", "dspex.journal"),  # upward
        ("layers", "dspex.harness", "dspex.optimizers"),  # sibling front ends
        ("layers", "dspex.workers.process", "dspex"),  # the root, which imports everything
        ("acyclic", "dspex.view.entries", "dspex.view.timeline"),  # a cycle in a package
        ("acyclic", "dspex.store.backend", "dspex.store.memory"),
    ],
)
def test_the_contracts_refuse_upward_sibling_and_cyclic_imports(contract, importer, imported):
    """The contracts themselves, each on an import it must refuse."""
    assert _kept(contract, _graph())
    graph = _graph()
    graph.add_import(importer=importer, imported=imported)
    assert not _kept(contract, graph)
