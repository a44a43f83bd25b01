"""What the LLM engine's SageMaker container is told: where the weights are, how to serve them.

The container is the Large Model Inference (LMI, DJL Serving) container for Neuron, the one AWS
engine image that speaks SageMaker's contract (`/ping`, `/invocations` on 8080, streamed
answers for `InvokeEndpointWithResponseStream`) and runs vLLM on NeuronCores. It reads its
configuration from `OPTION_*` environment variables, the `option.*` keys of its
`serving.properties` (LMI deployment guide, "Container and Model Configurations"), and the model
from `/opt/ml/model` unless `HF_MODEL_ID` names a Hub model.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import SecretValue
from aws_cdk import aws_sagemaker as sagemaker

from inf3kit.llm import LlmSettings, LlmWeights
from inf3kit.rules import split_s3_uri

SAGEMAKER_MODEL_DIR = "/opt/ml/model"
"""Where SageMaker copies the model data source before the container starts."""
LMI_DTYPES = {"bfloat16": "bf16", "float16": "fp16"}
"""`option.dtype` values (LMI deployment guide, configurations: fp32, fp16, bf16)."""


@dataclass(frozen=True)
class WeightsLocation:
    """The weights and compiled artefacts as the container and the role see them."""

    bucket: str | None
    """The weights' bucket (S3 weights), None for Hub weights."""
    prefix: str | None
    """The weights' key prefix, ending in '/'."""
    compiled_bucket: str | None
    """The compiled artefacts' bucket when the container reads them from S3 itself."""
    compiled_prefix: str | None
    compiled_path: str | None
    """What the container loads compiled artefacts from: a path under /opt/ml/model when they
    sit inside the weights prefix (SageMaker copies them), else their S3 URI."""

    @property
    def needs_network(self) -> bool:
        """The container downloads something itself: Hub weights, or compiled artefacts in S3."""
        return self.bucket is None or self.compiled_bucket is not None


def locate(weights: LlmWeights) -> WeightsLocation:
    """Split the weights' and compiled artefacts' S3 URIs (validated before this runs)."""
    bucket = prefix = None
    if weights.s3_prefix is not None:
        bucket, prefix = _split(weights.s3_prefix)
    compiled_bucket = compiled_prefix = compiled_path = None
    if weights.compiled_prefix is not None:
        inside = weights.s3_prefix is not None and weights.compiled_prefix.startswith(
            weights.s3_prefix
        )
        if inside:
            assert weights.s3_prefix is not None
            relative = weights.compiled_prefix.removeprefix(weights.s3_prefix).rstrip("/")
            compiled_path = f"{SAGEMAKER_MODEL_DIR}/{relative}"
        else:
            compiled_bucket, compiled_prefix = _split(weights.compiled_prefix)
            compiled_path = weights.compiled_prefix
    return WeightsLocation(bucket, prefix, compiled_bucket, compiled_prefix, compiled_path)


def model_data_source(
    location: WeightsLocation, weights: LlmWeights
) -> sagemaker.CfnModel.ModelDataSourceProperty | None:
    """An uncompressed S3 prefix SageMaker copies to /opt/ml/model; None for Hub weights.

    SageMaker API reference, S3ModelDataSource: S3DataType S3Prefix with CompressionType None
    takes every object under the prefix, which must end with '/'.
    """
    if weights.s3_prefix is None:
        return None
    return sagemaker.CfnModel.ModelDataSourceProperty(
        s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
            s3_uri=weights.s3_prefix,
            s3_data_type="S3Prefix",
            compression_type="None",
        )
    )


def lmi_environment(
    weights: LlmWeights,
    settings: LlmSettings,
    location: WeightsLocation,
    *,
    loading_timeout_seconds: int,
) -> dict[str, str]:
    """The LMI container's variables for vLLM on Neuron with these weights and settings.

    `OPTION_MODEL_LOADING_TIMEOUT` follows the variant's startup timeout: LMI's default (1800 s)
    would stop a load SageMaker still waits for, or outlive one SageMaker already gave up on.
    """
    env = {
        "OPTION_ROLLING_BATCH": "vllm",
        "OPTION_TENSOR_PARALLEL_DEGREE": str(settings.tensor_parallel),
        "OPTION_MAX_ROLLING_BATCH_SIZE": str(settings.max_num_seqs),
        "OPTION_MAX_MODEL_LEN": str(settings.max_model_len),
        "OPTION_DTYPE": LMI_DTYPES[settings.dtype],
        "OPTION_MODEL_LOADING_TIMEOUT": str(loading_timeout_seconds),
    }
    if weights.huggingface_id is not None:
        env["HF_MODEL_ID"] = weights.huggingface_id
        env["OPTION_REVISION"] = str(weights.revision)
    if weights.token_secret is not None:
        env["HF_TOKEN"] = token_reference(weights.token_secret)
    if location.compiled_path is not None:
        env["OPTION_COMPILED_GRAPH_PATH"] = location.compiled_path
    return env


def token_reference(secret: str) -> str:
    """A CloudFormation dynamic reference to the secret's value, never the value itself.

    CloudFormation resolves it when it creates the model, with the deployer's permissions, so
    the template and the assembly hold only the secret's name (CloudFormation user guide,
    "Get values stored in other services using dynamic references").
    """
    return SecretValue.secrets_manager(secret).unsafe_unwrap()


def _split(uri: str) -> tuple[str, str]:
    found = split_s3_uri(uri)
    assert found is not None  # validated first
    return found
