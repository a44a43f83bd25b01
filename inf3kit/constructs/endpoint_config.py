"""The model and the endpoint config: image, model data, and the variant's type, count, volume."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Duration, Size, Validations
from aws_cdk import aws_sagemaker as sagemaker

from inf3kit.catalog import Catalog, family_of
from inf3kit.constructs.endpoint_base import VARIANT_NAME
from inf3kit.constructs.hardware_checks import waive_unlisted_types
from inf3kit.constructs.nag import skip_checkov

if TYPE_CHECKING:
    from inf3kit.constructs.endpoint_managed import ManagedEndpoint

# Families whose sizes carry local NVMe instance storage. SageMaker encrypts it in hardware and
# refuses both KmsKeyId and VolumeSizeInGB for them (SageMaker API reference,
# CreateEndpointConfig: "You can't request a KmsKeyId when using an instance type with local
# storage"; EC2 instance-type pages list trn1/trn1n/trn2 NVMe storage). inf1/inf2 are EBS-only;
# inf3 is assumed EBS-only like inf2 (provisional).
LOCAL_STORAGE_FAMILIES = frozenset({"trn1", "trn1n", "trn2", "trn3"})


def add_endpoint_config(
    endpoint: ManagedEndpoint,
    catalog: Catalog,
    *,
    initial: int,
    startup_timeout: Duration,
    download_timeout: Duration,
    volume_size: Size | None,
    capture: sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None,
) -> sagemaker.CfnEndpointConfig:
    """The config, encrypted with the endpoint's key unless the type has local storage."""
    instance_type = endpoint.instance_type
    local_storage = family_of(instance_type) in LOCAL_STORAGE_FAMILIES
    config = sagemaker.CfnEndpointConfig(
        endpoint,
        "Config",
        kms_key_id=None if local_storage else endpoint.key.key_arn,
        production_variants=[
            sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=endpoint.model.attr_model_name,
                instance_type=instance_type,
                initial_instance_count=initial,
                initial_variant_weight=1,
                container_startup_health_check_timeout_in_seconds=int(startup_timeout.to_seconds()),
                model_data_download_timeout_in_seconds=int(download_timeout.to_seconds()),
                volume_size_in_gb=None if volume_size is None else int(volume_size.to_gibibytes()),
            )
        ],
        data_capture_config=capture,
    )
    if local_storage:
        skip_checkov(
            config,
            "CKV_AWS_98",
            f"{instance_type} has local NVMe storage, which SageMaker encrypts in hardware and "
            "for which it refuses a KmsKeyId.",
        )
    if waive_unlisted_types(config, [instance_type], catalog, "E3030"):
        # The CDK's own template validation reports the same enum as W3030.
        Validations.of(config).acknowledge(
            Acknowledgment(
                id="CloudFormation-Validate::W3030",
                reason=f"{instance_type} is provisional: cfn-lint's list of SageMaker instance "
                "types cannot contain it; the catalog validated it instead.",
            )
        )
    return config


def add_model(
    endpoint: ManagedEndpoint,
    *,
    image_uri: str,
    env: dict[str, str],
    vpc: sagemaker.CfnModel.VpcConfigProperty | None,
    isolation: bool,
    model_data_url: str | None = None,
    model_data_source: sagemaker.CfnModel.ModelDataSourceProperty | None = None,
) -> sagemaker.CfnModel:
    """The model: the image, its model data (an archive URL or an S3 source), its environment
    and where it runs."""
    model = sagemaker.CfnModel(
        endpoint,
        "Model",
        execution_role_arn=endpoint.role.role_arn,
        enable_network_isolation=isolation,
        primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
            image=image_uri,
            model_data_url=model_data_url,
            model_data_source=model_data_source,
            environment=env or None,
            mode="SingleModel",
        ),
        vpc_config=vpc,
    )
    # SageMaker checks image and model access with the role when it creates the model.
    model.node.add_dependency(endpoint.role)
    if not isolation:
        skip_checkov(
            model,
            "CKV_AWS_370",
            "The chosen serving image fetches weights or calls services at run time, so "
            "network isolation is off for it; pass network_isolation=True if it does not.",
        )
    return model
