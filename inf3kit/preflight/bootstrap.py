"""Is the account/region bootstrapped with a CDK toolkit stack recent enough for the app?

The CDK CLI refuses to deploy a template whose `CheckBootstrapVersion` rule its bootstrap
stack fails, and the synthesized manifest says what each artifact needs
(`requiresBootstrapStackVersion`): 6 for the deploy and asset roles of aws-cdk-lib 2's
DefaultStackSynthesizer, 8 for its lookup role (a stack that looks up an existing VPC).
Without an assembly at hand those are the required versions.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from inf3kit.preflight.report import Context

CHECK = "bootstrap"
TOOLKIT_STACK = "CDKToolkit"
DEPLOY_VERSION = 6
LOOKUP_VERSION = 8


def required_version(ctx: Context) -> tuple[int, str]:
    """The bootstrap version the app needs, and where that number comes from."""
    manifest = ctx.assembly_dir / "manifest.json" if ctx.assembly_dir else None
    if manifest is not None and manifest.is_file():
        found = _required_in(json.loads(manifest.read_text()))
        if found:
            return max(found), f"required by {manifest}"
    if not ctx.loaded.spec.network.creates_vpc:
        return LOOKUP_VERSION, "the CDK's lookup role, which reads the existing VPC"
    return DEPLOY_VERSION, "the CDK's deploy role"


def _required_in(manifest: dict[str, Any]) -> list[int]:
    versions = []
    for artifact in manifest.get("artifacts", {}).values():
        props = artifact.get("properties", {})
        for holder in (props, props.get("lookupRole") or {}):
            if "requiresBootstrapStackVersion" in holder:
                versions.append(int(holder["requiresBootstrapStackVersion"]))
    return versions


def check(ctx: Context) -> None:
    need, why = required_version(ctx)
    fix = (
        f"bootstrap (or re-bootstrap) it: `npx cdk bootstrap aws://ACCOUNT/{ctx.region}` "
        "with the CDK CLI in node_modules"
    )
    try:
        stack = ctx.client("cloudformation").describe_stacks(StackName=TOOLKIT_STACK)["Stacks"][0]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationError":
            raise
        ctx.problem(CHECK, f"{ctx.region} is not bootstrapped (no {TOOLKIT_STACK} stack)", fix)
        return
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    version = outputs.get("BootstrapVersion")
    if version is None or not version.isdigit():
        ctx.problem(
            CHECK, f"the {TOOLKIT_STACK} stack has no BootstrapVersion output ({version!r})", fix
        )
        return
    if int(version) < need:
        ctx.problem(
            CHECK,
            f"the {TOOLKIT_STACK} stack is bootstrap version {version}; the app needs {need} "
            f"({why})",
            fix,
        )
        return
    ctx.checked(CHECK, f"{TOOLKIT_STACK} is version {version} (>= {need}, {why})")
