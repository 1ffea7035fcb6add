"""The package's imports point down the layers of docs/architecture.md: no package imports one
above it or beside it, and no module imports itself back through others (a circle).

Every import counts, wherever it is written: at the top of a module, inside a function (a
lazy import is still a dependency), or under ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import patchwork_widget

ROOT = Path(patchwork_widget.__file__).parent
TOP = "(top-level modules)"  # cli.py, cli_*.py, demo.py, datasets.py, loaders.py, viz.py

# Top to bottom, as docs/architecture.md draws them. A package imports its own modules and
# those of the rungs below it; packages on one rung are independent of each other.
LAYERS: list[set[str]] = [
    {TOP},
    {"widget"},
    {"session"},
    {"active", "feature"},
    {"models"},
    {"images", "labels"},
    {"options"},
]
RUNG = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = module_files()


def imports_of(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + [node.module or ""])
            else:
                base = node.module or ""
            base = base.rstrip(".")
            for alias in node.names:  # "from pkg import module" imports the module
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    found.add(submodule)
                elif base in MODULES:
                    found.add(base)
    return found - {name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def unit_of(module: str) -> str | None:
    """The layer unit of a module: its subpackage, or TOP for the root's own modules (None
    for the root package itself)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return parts[1] if (ROOT / parts[1]).is_dir() else TOP


def test_every_package_has_a_layer():
    units = {unit_of(m) for m in MODULES} - {None}
    assert units <= set(RUNG), f"place {sorted(units - set(RUNG))} in LAYERS (and the docs)"


def test_no_package_imports_one_above_or_beside_it():
    wrong = sorted(
        f"{module} ({unit}) imports {target} ({target_unit})"
        for module, targets in GRAPH.items() if (unit := unit_of(module)) is not None
        for target in targets if (target_unit := unit_of(target)) not in (None, unit)
        and RUNG[target_unit] <= RUNG[unit]
    )
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_package_cycle():
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        unit = unit_of(module)
        if unit is not None:
            packages.setdefault(unit, set()).update(
                u for t in targets if (u := unit_of(t)) not in (None, unit))
    try:
        tuple(graphlib.TopologicalSorter(packages).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"package cycle: {' -> '.join(err.args[1])}")


def test_no_module_imports_itself_back():
    """A circle of modules (such as mixins importing the class they are mixed into) is one
    concept spread over files; a package's ``__init__`` re-exporting its modules is not."""
    graph = {name: {t for t in targets if MODULES[t].name != "__init__.py"}
             for name, targets in GRAPH.items() if MODULES[name].name != "__init__.py"}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"module circle: {' -> '.join(err.args[1])}")


def test_the_check_sees_lazy_and_relative_imports(tmp_path):
    """The parser finds an import inside a function and a relative one (the check itself)."""
    source = tmp_path / "store.py"
    source.write_text("from .journal import Journal\n"
                      "def f():\n    from patchwork_widget.active import registry\n")
    found = imports_of("patchwork_widget.labels.store", source)
    assert {"patchwork_widget.labels.journal", "patchwork_widget.active.registry"} <= found
