"""Catalog checks every construct runs on the instance types it is given."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Annotations, CfnResource, Token
from constructs import IConstruct

from inf3kit.catalog import Catalog, InstanceType, load_catalog
from inf3kit.catalog.hardware import Platform
from inf3kit.constructs.nag import waive_cfn_lint

PROVISIONAL_WARNING_ID = "inf3kit:provisionalInstanceType"


def check_instance_type(
    instance_type: str, *, platform: Platform, catalog: Catalog | None = None
) -> list[str]:
    """Problems with `instance_type` for `platform`, empty when it is a known Neuron type."""
    if Token.is_unresolved(instance_type):
        return []
    problem = (catalog or load_catalog()).neuron_type_problem(instance_type, platform)
    return [problem] if problem else []


def warn_if_provisional(scope: IConstruct, itype: InstanceType) -> None:
    """Attach a synthesis warning, since a provisional type's numbers are assumptions."""
    if itype.provisional:
        Annotations.of(scope).add_warning_v2(
            PROVISIONAL_WARNING_ID,
            f"{itype.name} is provisional: AWS has published no specification, so its catalog "
            f"numbers are assumptions (`inf3kit catalog --family {itype.family}` shows their "
            "sources). Confirm capacity and quotas before production, and override the catalog "
            "when AWS publishes the real figures.",
        )


LINT_UNLISTED = frozenset({"trn2.48xlarge"})
"""Generally available types cfn-lint's EC2 instance-type list (cfn-lint 1.x, us-east-1) does
not have yet; tests/constructs/test_shared.py checks this set against cfn-lint's own data."""


def waive_unlisted_types(
    resource: CfnResource, types: Sequence[str], catalog: Catalog, rule: str
) -> bool:
    """Waive cfn-lint's instance-type enum `rule` on `resource` where a type is provisional or
    missing from its list.

    cfn-lint lists published types only (E3030 for `ml.` types, E3628 for EC2 ones), so a
    provisional type, which the catalog validated instead, is unknown to it by definition, and
    its list trails AWS's (LINT_UNLISTED). Returns whether it waived anything.
    """
    known = [t for t in types if not Token.is_unresolved(t)]
    provisional = [t for t in known if catalog.get(t).provisional]
    unlisted = [t for t in known if t in LINT_UNLISTED]
    reasons = []
    if provisional:
        reasons.append(
            f"{', '.join(provisional)}: cfn-lint's instance type list only has published "
            "types; provisional ones (no AWS specification yet) are unknown to it"
        )
    if unlisted:
        reasons.append(
            f"{', '.join(unlisted)}: generally available, but not yet in cfn-lint's instance "
            "type list"
        )
    if reasons:
        waive_cfn_lint(resource, rule, "; ".join(reasons))
    return bool(reasons)
