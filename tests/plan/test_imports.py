"""Dependency rules: the runtime never imports plan; plan never imports the CDK side."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "inf3kit"


def imported_modules(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names = found.setdefault(path.name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
    return found


def test_the_runtime_never_imports_plan() -> None:
    for module, names in imported_modules(PACKAGE / "runtime").items():
        assert not any(n.startswith("inf3kit.plan") for n in names), module


def test_plan_never_imports_the_cdk_side() -> None:
    forbidden = ("aws_cdk", "constructs", "inf3kit.constructs", "inf3kit.stacks", "inf3kit.cli")
    for module, names in imported_modules(PACKAGE / "plan").items():
        assert not any(n.startswith(forbidden) for n in names), module
