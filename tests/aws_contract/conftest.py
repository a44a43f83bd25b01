"""The templates of every example spec, for the AWS contract tests.

Each test here holds one rule AWS applies at deploy or run time that neither the emulator nor
the linters check; its docstring names the AWS document the rule comes from. The tests read the
templates of every spec in examples/, so a new example is covered without a new test, and each
asserts that at least one example exercises its rule (a rule nothing exercises proves nothing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from inf3kit.stacks import SynthResult


@dataclass(frozen=True)
class StackTemplate:
    name: str
    body: dict[str, Any]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.body["Resources"].items() if r["Type"] == kind}

    def role_statements(self, role: str) -> list[dict[str, Any]]:
        """Every statement of the inline policies attached to the role with logical id `role`."""
        found = []
        for policy in self.resources("AWS::IAM::Policy").values():
            if {"Ref": role} in policy["Properties"].get("Roles", []):
                found += policy["Properties"]["PolicyDocument"]["Statement"]
        return found

    def role_actions(self, role: str) -> set[str]:
        actions: set[str] = set()
        for statement in self.role_statements(role):
            value = statement["Action"]
            actions.update([value] if isinstance(value, str) else value)
        return actions


@pytest.fixture(scope="session")
def templates(synthesized: dict[str, SynthResult]) -> list[StackTemplate]:
    found = []
    for example, result in synthesized.items():
        for path in sorted(result.assembly_dir.glob("*.template.json")):
            found.append(StackTemplate(f"{example}/{path.stem}", json.loads(path.read_text())))
    return found


def ref(value: Any) -> str:
    """The logical id behind a Ref or Fn::GetAtt."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"not a reference: {value!r}")


def text_of(value: Any) -> str:
    """A CloudFormation value as text, each function other than Fn::Join replaced by '<t>'."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(text_of(part) for part in value["Fn::Join"][1])
    return value if isinstance(value, str) else "<t>"
