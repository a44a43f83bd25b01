"""Deploy a spec into the local AWS emulator with the real CDK CLI, and report what happened."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
        return Counter(r["Type"] for r in self.template.get("Resources", {}).values())


@dataclass
class StackReport:
    name: str
    status: str
    outputs: dict[str, str]
    deployed: Counter[str]
    skipped: Counter[str] = field(default_factory=Counter)
    """Resource types in the template that the emulator did not create."""


def read_assembly(outdir: Path) -> list[StackArtifact]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = []
    for artifact in manifest["artifacts"].values():
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
    for region in sorted({s.region for s in stacks}):
        cdk_cli.run(
            ["bootstrap", f"aws://{ACCOUNT}/{region}"],
            spec=spec,
            env=aws.env(region),
            outdir=outdir,
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
    return [report(aws, stack) for stack in stacks]


def docker_assets(outdir: Path) -> list[str]:
    """The Docker image assets of an assembly, by the construct path that defined them."""
    found = []
    for assets in sorted(outdir.glob("*.assets.json")):
        for image in json.loads(assets.read_text()).get("dockerImages", {}).values():
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


def report(aws: LocalAws, stack: StackArtifact) -> StackReport:
    """What the emulator holds for `stack`, and which template types it skipped."""
    cfn = aws.client("cloudformation", stack.region)
    described = cfn.describe_stacks(StackName=stack.name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    resources = cfn.list_stack_resources(StackName=stack.name)["StackResourceSummaries"]
    deployed = Counter(r["ResourceType"] for r in resources)
    skipped = Counter(
        {t: n - deployed.get(t, 0) for t, n in stack.resource_types.items() if n > deployed[t]}
    )
    return StackReport(stack.name, described["StackStatus"], outputs, deployed, skipped)
