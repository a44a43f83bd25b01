"""Deploy a spec into the local AWS emulator with the real CDK CLI, and report what happened."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import ClientError

from inf3kit._templates import resource_counts
from inf3kit.deploy import cdk_cli
from inf3kit.deploy.emulator import ACCOUNT, REGION, LocalAws


@dataclass(frozen=True)
class StackArtifact:
    """A stack in a synthesized cloud assembly."""

    name: str
    region: str
    template: dict

    @property
    def resource_types(self) -> Counter[str]:
        return resource_counts(self.template)


@dataclass(frozen=True)
class ResourceChange:
    """A resource an update added, modified or removed, by its construct path."""

    action: str
    """`added`, `modified` or `removed`."""
    path: str
    type: str

    def __str__(self) -> str:
        return f"{self.action} {self.path} ({self.type})"


@dataclass
class StackReport:
    name: str
    status: str
    outputs: dict[str, str]
    deployed: Counter[str]
    skipped: Counter[str] = field(default_factory=Counter)
    """Resource types in the template that the emulator did not create."""
    changes: list[ResourceChange] | None = None
    """What this deploy changed in a stack that existed before; None when it created it."""


def _artifacts(outdir: Path) -> dict[str, dict]:
    """The artifacts the last synthesis into `outdir` listed in its manifest.

    An output folder may also hold files from an earlier synthesis of another spec (templates,
    asset manifests); only the manifest says which belong to the app just synthesized.
    """
    return dict(json.loads((outdir / "manifest.json").read_text())["artifacts"])


def read_assembly(outdir: Path) -> list[StackArtifact]:
    stacks = []
    for artifact in _artifacts(outdir).values():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        props = artifact["properties"]
        region = artifact["environment"].rsplit("/", 1)[-1]
        stacks.append(
            StackArtifact(
                name=props.get("stackName") or artifact["displayName"],
                region=REGION if region.startswith("unknown") else region,
                template=json.loads((outdir / props["templateFile"]).read_text()),
            )
        )
    return stacks


def deploy(
    aws: LocalAws,
    spec: Path,
    outdir: Path,
    on_line: Callable[[str], None] | None = None,
) -> list[StackReport]:
    """Synthesize, bootstrap every region the spec uses, deploy all stacks, and report."""
    env, cwd = aws.env(), aws.state_dir
    cdk_cli.run(["synth", "--quiet"], spec=spec, env=env, outdir=outdir, on_line=on_line, cwd=cwd)
    stacks = read_assembly(outdir)
    require_docker_for(outdir)
    before = {stack.name: deployed_template(aws, stack) for stack in stacks}
    for region in sorted({s.region for s in stacks}):
        cdk_cli.run(
            ["bootstrap", f"aws://{ACCOUNT}/{region}"],
            spec=spec,
            env=aws.env(region),
            outdir=outdir,
            assembly=outdir,  # the app was just synthesized: no second synthesis
            on_line=on_line,
            cwd=cwd,
        )
    cdk_cli.run(
        ["deploy", "--all", "--require-approval", "never"],
        spec=spec,
        env=env,
        outdir=outdir,
        assembly=outdir,
        on_line=on_line,
        cwd=cwd,
    )
    return [report(aws, stack, before[stack.name]) for stack in stacks]


def deployed_template(aws: LocalAws, stack: StackArtifact) -> dict | None:
    """The template the emulator holds for `stack`, or None when it is not deployed."""
    cfn = aws.client("cloudformation", stack.region)
    try:
        body = cfn.get_template(StackName=stack.name)["TemplateBody"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return json.loads(body) if isinstance(body, str) else dict(body)


def diff_resources(before: dict, after: dict) -> list[ResourceChange]:
    """Resources added, modified or removed between two templates, in construct-path order."""
    old, new = before.get("Resources", {}), after.get("Resources", {})
    changes = []
    for key in old.keys() | new.keys():
        if key not in old:
            changes.append(_change("added", key, new[key]))
        elif key not in new:
            changes.append(_change("removed", key, old[key]))
        elif old[key] != new[key]:
            changes.append(_change("modified", key, new[key]))
    return sorted(changes, key=lambda c: (c.path, c.action))


def _change(action: str, logical_id: str, resource: dict) -> ResourceChange:
    path = resource.get("Metadata", {}).get("aws:cdk:path", f"/{logical_id}")
    path = path.split("/", 1)[1].removesuffix("/Resource")
    return ResourceChange(action, path, resource["Type"])


def docker_assets(outdir: Path) -> list[str]:
    """The Docker image assets of the assembly's stacks, by the construct path that defined
    them; asset manifests left in the folder by the synthesis of another spec are not read."""
    found = []
    for artifact in _artifacts(outdir).values():
        if artifact["type"] != "cdk:asset-manifest":
            continue
        assets = json.loads((outdir / artifact["properties"]["file"]).read_text())
        for image in assets.get("dockerImages", {}).values():
            found.append(image.get("displayName") or image["source"].get("directory", "?"))
    return found


def require_docker_for(outdir: Path) -> None:
    """Refuse before deploying anything when image assets need a Docker engine that is absent."""
    images = docker_assets(outdir)
    if not images or _docker_engine_answers():
        return
    raise cdk_cli.CdkCliError(
        f"the stacks build Docker image assets ({', '.join(images)}), and no Docker engine "
        "answers here, so they cannot be published. Fix: give the endpoint an image URI "
        "(`endpoint.image: <registry>/<repo>:<tag>` in the spec) or run where Docker is available"
    )


def _docker_engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run([docker, "info"], capture_output=True, check=False, timeout=20)
    return probe.returncode == 0


def destroy(
    aws: LocalAws, spec: Path, outdir: Path, on_line: Callable[[str], None] | None = None
) -> None:
    cdk_cli.run(
        ["destroy", "--all", "--force"],
        spec=spec,
        env=aws.env(),
        outdir=outdir,
        on_line=on_line,
        cwd=aws.state_dir,
    )


def remaining_stacks(aws: LocalAws) -> list[str]:
    """The stacks the emulator holds in any region, apart from the CDK's bootstrap stacks."""
    regions = aws.session().get_available_regions("cloudformation")
    return sorted(
        f"{stack['StackName']} ({region})"
        for region in regions
        for stack in aws.client("cloudformation", region).describe_stacks()["Stacks"]
        if stack["StackName"] != "CDKToolkit" and stack["StackStatus"] != "DELETE_COMPLETE"
    )


def report(aws: LocalAws, stack: StackArtifact, before: dict | None = None) -> StackReport:
    """What the emulator holds for `stack`, which template types it skipped, and what changed
    since `before` (the template deployed before, if any)."""
    cfn = aws.client("cloudformation", stack.region)
    described = cfn.describe_stacks(StackName=stack.name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    resources = cfn.list_stack_resources(StackName=stack.name)["StackResourceSummaries"]
    deployed = Counter(r["ResourceType"] for r in resources)
    skipped = Counter(
        {t: n - deployed.get(t, 0) for t, n in stack.resource_types.items() if n > deployed[t]}
    )
    changes = None if before is None else diff_resources(before, stack.template)
    return StackReport(
        stack.name, described["StackStatus"], outputs, deployed, skipped, changes=changes
    )
