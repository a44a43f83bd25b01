"""Build the CDK app from a spec, synthesize it, and collect gate results and warnings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import cx_api
from cdk_nag import AwsSolutionsChecks

from inf3kit._templates import resource_counts
from inf3kit.spec import LoadedSpec, load_spec
from inf3kit.stacks.delivery import SPEC_CONTEXT_KEY, DeliveryStack, pipeline_environment
from inf3kit.stacks.gates import GateResult, run_gates
from inf3kit.stacks.service import ServiceStack

DEFAULT_SPEC = "examples/demo.yaml"


def build_app(spec_path: str | Path | None = None, *, outdir: str | Path | None = None) -> cdk.App:
    """The app `cdk` runs: one stack per spec environment, checked by cdk-nag at synthesis.

    The spec comes from `spec_path`, else the `inf3kit:spec` context key (cdk.json, or
    `cdk synth -c inf3kit:spec=path`), else the demo spec.
    """
    app = cdk.App(outdir=str(outdir) if outdir else None)
    spec_path = spec_path or app.node.try_get_context(SPEC_CONTEXT_KEY) or DEFAULT_SPEC
    add_service(app, load_spec(spec_path))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    return app


def add_service(app: cdk.App, loaded: LoadedSpec) -> list[ServiceStack]:
    """One ServiceStack per environment; a single environment-agnostic stack when none.

    With `delivery:`, the app holds the pipeline stack instead, whose stages hold the stacks.
    """
    spec = loaded.spec
    if spec.delivery is not None:
        env = pipeline_environment(loaded)
        pipeline = DeliveryStack(app, f"{spec.name}-pipeline", loaded=loaded, env=env)
        return [stage.service for stage in pipeline.stages.values()]
    if not spec.environments:
        return [ServiceStack(app, spec.name, loaded=loaded, env=_default_env())]
    return [
        ServiceStack(
            app,
            f"{spec.name}-{stage}",
            loaded=loaded,
            env=cdk.Environment(account=env.account, region=env.region),
        )
        for stage, env in spec.environments.items()
    ]


def _default_env() -> cdk.Environment | None:
    """The CLI's account/region when it knows them; else synthesize environment-agnostic."""
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    return cdk.Environment(account=account, region=region) if account and region else None


@dataclass
class SynthResult:
    assembly_dir: Path
    stacks: dict[str, dict[str, int]]
    """Per stack: resource count per CloudFormation type."""
    warnings: list[str] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed or g.skipped for g in self.gates)


def synth(spec_path: str | Path, outdir: str | Path, *, checkov: bool = True) -> SynthResult:
    """Synthesize in-process, keeping the templates even when cdk-nag reports findings."""
    outdir = Path(outdir)
    app = build_app(spec_path, outdir=outdir)
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
    assembly = cx_api.CloudAssembly(str(outdir))
    stacks, warnings = {}, []
    for stack in assembly.stacks_recursively:  # stacks of pipeline stages are nested
        stacks[stack.stack_name] = dict(sorted(resource_counts(stack.template).items()))
        warnings += [
            f"{m.id}: {m.entry.data}"
            for m in stack.messages
            if m.level == cx_api.SynthesisMessageLevel.WARNING
        ]
    return SynthResult(outdir, stacks, warnings, run_gates(outdir, checkov=checkov))
