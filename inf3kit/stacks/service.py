"""ServiceStack: one deployable model service, composed from a validated spec."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Environment, Size, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from inf3kit.catalog import CompiledVariant
from inf3kit.constructs import (
    LlmEndpoint,
    LlmFleet,
    ModelArtifacts,
    ModelBundle,
    NeuronEndpoint,
    NeuronFleet,
    ServiceNetwork,
)
from inf3kit.runtime.bundle import peek_manifest
from inf3kit.spec import LoadedSpec
from inf3kit.stacks.endpoint import add_endpoint
from inf3kit.stacks.fleet import add_fleet
from inf3kit.stacks.llm_endpoint import add_llm_endpoint
from inf3kit.stacks.llm_fleet import add_llm_fleet
from inf3kit.stacks.monitoring import add_monitoring


def neuron_variants(path: Path) -> tuple[CompiledVariant, ...]:
    """The Neuron variants of a local bundle, read from its manifest (the files stay packed)."""
    manifest = peek_manifest(path)
    return tuple(
        CompiledVariant.of(v.target, v.compiler.version, v.batch_size, v.file)
        for v in manifest.variants
        if v.is_neuron
    )


class ServiceStack(Stack):
    """Translates the spec into construct props; the constructs never see the YAML."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        loaded: LoadedSpec,
        env: Environment | None = None,
        stack_name: str | None = None,
    ) -> None:
        """:param stack_name: the CloudFormation name. Default: the construct id, prefixed by
        the enclosing Stage's name inside a pipeline (which is why pipelines pass one)."""
        spec = loaded.spec
        super().__init__(
            scope,
            id,
            env=env,
            stack_name=stack_name,
            description=spec.description or f"inf3kit service {spec.name}",
        )
        self.loaded = loaded
        for key, value in {"inf3kit:service": spec.name, **spec.tags}.items():
            Tags.of(self).add(key, value)

        self.artifacts = ModelArtifacts(self, "Artifacts")
        bundle = spec.model.bundle
        self.bundle: ModelBundle | None = None
        """The runtime's model bundle; None for an LLM (`model.engine: vllm` loads weights)."""
        self.bundle_size: Size | None = None
        """A local bundle's size, for the fleet's startup estimate."""
        self.bundle_variants: tuple[CompiledVariant, ...] = ()
        """A local bundle's Neuron variants, checked against what serves them; an s3:// bundle
        is not read at synthesis (`inf3kit preflight` verifies it)."""
        if bundle is not None:
            self.bundle = (
                ModelBundle(self, "Bundle", s3_uri=bundle)
                if spec.model.is_s3
                else ModelBundle(self, "Bundle", path=loaded.resolve(bundle))
            )
            if not spec.model.is_s3:
                self.bundle_variants = neuron_variants(loaded.resolve(bundle))
                self.bundle_size = Size.bytes(loaded.resolve(bundle).stat().st_size)
        self.vpc: ec2.IVpc | None = None
        if spec.network.creates_vpc:
            self.vpc = ServiceNetwork(
                self,
                "Network",
                flow_log_bucket=self.artifacts.access_logs,
                max_azs=spec.network.max_azs,
            ).vpc
        elif spec.endpoint is not None or spec.fleet is not None:
            self.vpc = ec2.Vpc.from_lookup(self, "Network", vpc_id=spec.network.vpc)

        CfnOutput(self, "ArtifactBucketName", value=self.artifacts.bucket.bucket_name)
        if self.bundle is not None:
            CfnOutput(self, "ModelDataUrl", value=self.bundle.s3_url)

        self.endpoint: NeuronEndpoint | LlmEndpoint | None = None
        if spec.endpoint is not None:
            self.endpoint = (
                add_llm_endpoint(self, spec.endpoint)
                if spec.model.is_llm
                else add_endpoint(self, spec.endpoint)
            )
        self.endpoint_name: CfnOutput | None = (
            CfnOutput(
                self,
                "EndpointName",
                value=self.endpoint.endpoint.attr_endpoint_name,
                description="`inf3kit invoke --endpoint NAME --input FILE` smoke-tests it",
            )
            if self.endpoint is not None
            else None
        )
        """The endpoint's name as a stack output, which a delivery stage's smoke test reads."""
        self.fleet: NeuronFleet | LlmFleet | None = None
        if spec.fleet is not None:
            self.fleet = (
                add_llm_fleet(self, spec.fleet)
                if spec.model.is_llm
                else add_fleet(self, spec.fleet)
            )
        self.monitoring = add_monitoring(self, spec.monitoring, self.endpoint, self.fleet)
