"""Reading a synthesized CloudFormation template; no CDK import, so any room may use it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any


def resource_counts(template: Mapping[str, Any]) -> Counter[str]:
    """How many resources of each CloudFormation type the template declares."""
    return Counter(r["Type"] for r in template.get("Resources", {}).values())
