"""The redaction package is a leaf: every layer may use it, so it imports nothing of ours but itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import communication_operator.redaction

PACKAGE = "communication_operator.redaction"
PACKAGE_DIR = Path(communication_operator.redaction.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved within the package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(f"{PACKAGE}.{node.module or ''}" if node.level else node.module or "")
    return names


def test_the_redaction_modules_import_only_the_standard_library_and_their_siblings() -> None:
    modules = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(modules) > 1
    for path in modules:
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            assert name.startswith(f"{PACKAGE}."), f"{path.name} imports {name}"
            if path.name != "__init__.py":
                # A part importing the package front would import every other part (and risk a cycle).
                assert name != PACKAGE, f"{path.name} imports the package front"
