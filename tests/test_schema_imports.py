"""Storage tables import only a shared base: each table module imports alone, in a fresh
interpreter, whatever else was or was not imported before (no circle through storage.models)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import storage.schema

ROOT = Path(__file__).resolve().parents[1]
TABLE_MODULES = [module.__name__ for module in storage.schema.TABLE_MODULES]
# What a table module may import of ours: the base (naming convention), column types, the call
# vocabulary its columns are typed by, and — for a table that carries its own queries (leases) —
# the database handle.
ALLOWED = {"storage.base", "storage.types", "storage.outcome", "storage.db", "storage.sqlite_hop"}
OURS = {"storage", "telephony", "bot", "handlers"}


@pytest.mark.parametrize("module", TABLE_MODULES)
def test_a_table_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("module", TABLE_MODULES)
def test_a_table_module_imports_no_other_table_module(module: str) -> None:
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    ours: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            ours.update(
                a.name
                for a in node.names
                if a.name.split(".")[0] in {"storage", "telephony", "bot", "handlers"}
            )
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top in {"telephony", "bot", "handlers"}:
                ours.add(node.module)
            elif node.module == "storage":
                ours.update(f"storage.{a.name}" for a in node.names)
            elif top == "storage":
                ours.add(node.module)
    assert ours <= ALLOWED, f"{module} imports {sorted(ours - ALLOWED)}"


def test_the_schema_holds_every_table_module() -> None:
    """A new table module must join storage.schema (migrations and tests see the metadata)."""
    found = set()
    for path in (ROOT / "storage").glob("*.py"):
        text = path.read_text()
        if "table=True" in text:
            found.add(f"storage.{path.stem}")
    assert found == set(TABLE_MODULES)
