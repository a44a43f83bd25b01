"""How long an LLM endpoint may take to download its weights and to become healthy.

SageMaker stops an instance whose model download or first passing `/ping` takes longer than the
variant's ModelDataDownloadTimeoutInSeconds or ContainerStartupHealthCheckTimeoutInSeconds
(each at most 3600 s), so both follow the model's size: weights downloaded at a stated
throughput, loaded onto the NeuronCores, and compiled when no pre-compiled artefacts are given.
The rates are assumptions stated here, not measurements (no Neuron host here); a margin covers
their error, and a model that cannot start within SageMaker's limit is refused with the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inf3kit.llm.architecture import parameter_count
from inf3kit.llm.fit import WEIGHT_BYTES
from inf3kit.llm.settings import LlmSettings, LlmWeights, ModelArchitecture

MIB = 1024**2
S3_DOWNLOAD_BYTES_PER_SECOND = 100 * MIB
"""SageMaker's copy of an S3 prefix to the instance volume: assumed 100 MiB/s, well below what
one instance's network carries, since the copy is per object and shards are several GB."""
HUB_DOWNLOAD_BYTES_PER_SECOND = 50 * MIB
"""The engine's own download from the Hugging Face Hub: assumed half the S3 rate (internet, one
connection per file)."""
LOAD_BYTES_PER_SECOND = 200 * MIB
"""Reading the weights from the volume into host memory and onto the NeuronCores."""
COMPILE_BASE_SECONDS = 600
COMPILE_SECONDS_PER_BILLION_PARAMETERS = 40
"""Neuron compilation of the context-encoding and token-generation graphs at startup: assumed
10 minutes plus 40 s per billion parameters, which puts Llama-3.1-8B at about 15 minutes and a
70B model at about an hour, the orders public reports give; measure yours on a Neuron host."""
ENGINE_START_SECONDS = 300
"""Container start, engine initialisation and warm-up requests, whatever the model's size."""
MARGIN = 1.5
"""Headroom on the estimate: a timeout that is too long only delays the report of a failure,
one that is too short fails a healthy start."""
MIN_SECONDS = 600
MAX_SECONDS = 3600
"""SageMaker API reference, ProductionVariant: both timeouts take 60..3600 seconds."""


@dataclass(frozen=True)
class LoadEstimate:
    """The timeouts for a model, in seconds, and the startup the estimate asks for uncapped."""

    download_seconds: int
    startup_seconds: int
    needed_startup_seconds: int
    """The estimate before the 3600 s cap; above it the model cannot start on SageMaker."""
    compiles: bool


def estimate(weight_bytes: int, parameters: int, *, from_hub: bool, compiled: bool) -> LoadEstimate:
    """The download and startup timeouts for `weight_bytes` of weights of `parameters` parameters.

    `from_hub`: the engine downloads the weights itself at startup (so the download counts
    against the startup timeout, and SageMaker downloads nothing); `compiled`: pre-compiled
    artefacts are given, so nothing compiles at startup.
    """
    sagemaker_download = 0 if from_hub else weight_bytes / S3_DOWNLOAD_BYTES_PER_SECOND
    startup = ENGINE_START_SECONDS + weight_bytes / LOAD_BYTES_PER_SECOND
    if from_hub:
        startup += weight_bytes / HUB_DOWNLOAD_BYTES_PER_SECOND
    if not compiled:
        startup += COMPILE_BASE_SECONDS + parameters / 1e9 * COMPILE_SECONDS_PER_BILLION_PARAMETERS
    needed = math.ceil(startup * MARGIN)
    return LoadEstimate(
        download_seconds=_bounded(math.ceil(sagemaker_download * MARGIN)),
        startup_seconds=_bounded(needed),
        needed_startup_seconds=needed,
        compiles=not compiled,
    )


def _bounded(seconds: int) -> int:
    return max(MIN_SECONDS, min(MAX_SECONDS, seconds))


def model_estimate(
    weights: LlmWeights, settings: LlmSettings, architecture: ModelArchitecture
) -> LoadEstimate:
    """`estimate` for a model of this shape; the checkpoint is taken to be stored in the
    serving dtype."""
    parameters = parameter_count(architecture)
    return estimate(
        parameters * WEIGHT_BYTES[settings.dtype],
        parameters,
        from_hub=weights.huggingface_id is not None,
        compiled=weights.compiled_prefix is not None,
    )


def too_slow_to_start(
    sized: LoadEstimate,
    weights: LlmWeights,
    *,
    timeout_name: str = "startup_timeout",
    compiled_name: str = "weights.compiled_prefix",
) -> str | None:
    """Why the model cannot start within SageMaker's hour, with the fix; None when it can.

    The one rule behind LlmEndpoint and the spec (`endpoint.startup_timeout_seconds`,
    `model.weights.compiled`), which name the fields their own way.
    """
    if sized.needed_startup_seconds <= MAX_SECONDS:
        return None
    steps = "download from the Hub, load" if weights.huggingface_id else "load"
    steps += " and compile" if sized.compiles else ""
    fix = (
        f"pre-compile it (`inf3kit llm compile`) and pass {compiled_name}"
        if sized.compiles
        else "serve it on an EC2 fleet, which has no such limit"
    )
    return (
        f"{timeout_name}: this model needs about {sized.needed_startup_seconds} s to {steps} "
        f"(inf3kit.llm.startup's stated rates), above SageMaker's 3600 s limit for the startup "
        f"health check. Fix: {fix}, or set {timeout_name} (at most 1 hour) if you measured a "
        "faster start"
    )
