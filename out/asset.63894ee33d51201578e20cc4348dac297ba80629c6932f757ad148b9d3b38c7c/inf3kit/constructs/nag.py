"""Acknowledging cdk-nag and checkov findings, always with a specific reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge a cdk-nag rule (e.g. 'AwsSolutions-S1') for `scope` and its children."""
    if len(reason) < 20:
        raise ValueError(f"acknowledgement of {rule} needs a specific reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def skip_checkov(resource: CfnResource, check: str, reason: str) -> None:
    """Record a checkov skip in the resource's metadata, where checkov reads it."""
    if len(reason) < 20:
        raise ValueError(f"skipping {check} needs a specific reason, got {reason!r}")
    meta = resource.get_metadata("checkov") or {"skip": []}
    meta["skip"].append({"id": check, "comment": reason})
    resource.add_metadata("checkov", meta)


def waive_cfn_lint(resource: CfnResource, rule: str, reason: str) -> None:
    """Have cfn-lint ignore `rule` on this resource, keeping checks waived before."""
    if len(reason) < 20:
        raise ValueError(f"waiving {rule} needs a specific reason, got {reason!r}")
    meta = resource.get_metadata("cfn-lint") or {}
    checks = meta.setdefault("config", {}).setdefault("ignore_checks", [])
    if rule not in checks:
        checks.append(rule)
    resource.add_metadata("cfn-lint", meta)
