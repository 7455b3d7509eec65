"""The house rules of the package, checked on its source: a one-way import graph and a written model contract.

Every rule here names the file and the import that breaks it, so a new family that lands in the
wrong place fails with the fix in the message.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ZOO = Path(__file__).resolve().parents[1] / "zoo"

# package -> zoo packages it must not import (HOUSE-REVIEW §7 and CONTRIBUTING.md)
FORBIDDEN = {
    "registry": {"*"},
    "utils": {"*"},
    "physics": {"data", "nn", "models", "hub", "solvers", "training", "tasks", "bench", "cli", "api", "deploy"},
    "nn": {"hub", "physics", "models", "data", "training", "tasks", "bench", "cli", "api", "deploy"},
    "solvers": {"data", "nn", "models", "hub", "training", "tasks", "bench", "cli", "api", "deploy"},
    "metrics": {"data", "nn", "models", "hub", "training", "tasks", "bench", "cli", "api", "deploy"},
    "models": {"data", "hub", "training", "tasks", "bench", "cli", "api", "deploy"},
    "hub": {"registry", "models", "api", "nn", "physics", "data", "training", "tasks", "bench", "cli", "", "deploy"},
    "data": {"models", "nn", "training", "tasks", "bench", "cli", "hub", "deploy"},
    "training": {"tasks", "bench", "cli", "deploy"},
    "tasks": {"bench", "cli", "deploy"},
    "bench": {"cli"},
    "deploy": {"cli", "bench", "training", "data"},
}


def _package(path: Path) -> str:
    rel = path.relative_to(ZOO)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem != "__init__" else ""


def _zoo_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported zoo module, inside a function?) of one source file."""
    tree = ast.parse(path.read_text())
    out = []

    def visit(node: ast.AST, in_func: bool) -> None:
        for child in ast.iter_child_nodes(node):
            f = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((child.lineno, a.name, f) for a in child.names if a.name.split(".")[0] == "zoo")
            elif isinstance(child, ast.ImportFrom) and child.module and child.module.split(".")[0] == "zoo":
                out.append((child.lineno, child.module, f))
                out.extend((child.lineno, f"{child.module}.{a.name}", f) for a in child.names
                           if child.module == "zoo")  # `from zoo import models` imports zoo.models
            visit(child, f)

    visit(tree, False)
    return out


SOURCES = sorted(p for p in ZOO.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ZOO)) for p in SOURCES])
def test_imports_point_down(path):
    pkg = _package(path)
    banned = FORBIDDEN.get(pkg, set())
    for line, mod, _ in _zoo_imports(path):
        parts = mod.split(".")
        target = parts[1] if len(parts) > 1 else ""
        if target == pkg:
            continue
        if "*" in banned or target in banned:
            pytest.fail(f"{path.relative_to(ZOO.parent)}:{line} imports {mod}: the {pkg or 'zoo'} package must not "
                        f"import zoo.{target or '(the package face)'} (see CONTRIBUTING.md, 'The house')")


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ZOO)) for p in SOURCES])
def test_no_private_names_across_packages(path):
    tree = ast.parse(path.read_text())
    pkg = _package(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zoo."):
            other = node.module.split(".")[1]
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert other == pkg or not private, \
                f"{path.relative_to(ZOO.parent)}:{node.lineno} imports private {private} from {node.module}: make them public"


def test_function_local_zoo_imports_only_in_the_cli():
    """A function-local import that dodges a cycle hides the real graph; the CLI defers its groups on purpose."""
    bad = [f"{p.relative_to(ZOO.parent)}:{line} {mod}" for p in SOURCES if _package(p) != "cli"
           for line, mod, local in _zoo_imports(p) if local]
    assert not bad, "function-local zoo imports (move them to the top of the file): " + ", ".join(bad)


def test_the_model_contract_is_written_not_probed():
    probe = re.compile(r"(getattr|hasattr)\((net|self\.net|run|model)\b")
    hits = [f"{p.relative_to(ZOO.parent)}:{i}" for p in SOURCES
            for i, line in enumerate(p.read_text().splitlines(), 1) if probe.search(line)]
    assert not hits, f"the model contract (zoo/models/base.py) is probed with getattr/hasattr at {hits}"


def test_every_registered_model_is_a_restorer_with_a_task_and_module():
    import importlib

    import zoo
    from zoo.models.base import Restorer
    from zoo.tasks import all_tasks

    tasks = all_tasks()
    for name in zoo.list_models():
        e = zoo.get_entry(name)
        assert e.task in tasks, f"{name}: task {e.task!r} has no zoo/tasks/{e.task}.py"
        net = e.build(**e.test_config)
        assert isinstance(net, Restorer), f"{name}: {type(net).__name__} does not subclass zoo.models.base.Restorer"
        mod, _, cls = e.lightning_module.rpartition(".")
        assert hasattr(importlib.import_module(mod), cls), f"{name}: no Lightning module {e.lightning_module}"


def test_catalogue_file_matches_the_registry():
    """``zoo list``/``zoo info`` read zoo/catalog.json: it must say what the registry says."""
    from zoo.cli.catalog import build_catalog, read_catalog

    assert read_catalog() == build_catalog(), "zoo/catalog.json is stale: run python scripts/write_catalog.py"


def test_zoo_list_and_info_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from zoo.cli.main import main; assert main(['list']) == 0; "
            "assert main(['info', 'lorun-cs-r25']) == 0; assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '"params"' in r.stdout and "lorun-cs-r25" in r.stdout
