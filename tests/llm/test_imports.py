"""Dependency rule: inf3kit.llm imports only the catalog (and itself), never the CDK side, so the
spec, the constructs and the plan can all share it."""

from __future__ import annotations

from tests.plan.test_imports import PACKAGE, imported_modules


def test_llm_imports_only_the_catalog() -> None:
    for module, names in imported_modules(PACKAGE / "llm").items():
        ours = {n for n in names if n.startswith("inf3kit")}
        assert all(n.startswith(("inf3kit.llm", "inf3kit.catalog")) for n in ours), module
        assert not any(n.startswith(("aws_cdk", "constructs")) for n in names), module
