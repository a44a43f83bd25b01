"""How an LLM fleet instance divides its NeuronCores among vLLM servers, and how each is started.

One vLLM OpenAI-compatible server per tensor-parallel group: a trn2.48xlarge (64 logical
NeuronCores) serving a model at degree 16 runs four servers, on NeuronCores 0-15, 16-31, 32-47
and 48-63 and on four consecutive ports. The Neuron docs describe exactly this for data
parallelism on one instance: a unique port and a NEURON_RT_VISIBLE_CORES range per copy, and a
unique BASE_COMPILE_WORK_DIR per copy when they compile at the same time (NxD Inference
tutorial "GPT-OSS 120B on Trn3", and the Neuron runtime configuration guide).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from inf3kit.llm import LlmSettings

VLLM_ENVIRONMENT = "/opt/aws_neuronx_venv_pytorch_inference_vllm_*"
"""The Neuron DLAMI's vLLM virtual environment. Its name carries the vLLM and vllm-neuron
versions (`/opt/aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0` on the Neuron 2.x
Ubuntu 24.04 DLAMIs, Neuron DLAMI user guide "Virtual Environments pre-installed"), so the boot
resolves the pattern on the instance and uses the newest match."""
VLLM_DLAMI_PARAMETER = "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id"
"""The multi-framework Neuron DLAMI (Ubuntu 24.04): it carries the vLLM environment on Inf2,
Trn1, Trn2 and Trn3 (the vLLM single-framework DLAMI supports Trn2 and Trn3 only). Neuron
DLAMI user guide, "SSM Parameter Prefix"."""
HEALTH_PATH = "/health"
"""vLLM's health route: 200 once the engine is up (vLLM Neuron quickstart, online serving)."""
LLM_METRIC_NAMESPACE = "Inf3kit/LLM"
"""CloudWatch namespace of the queue metric an LLM fleet scales on."""
REQUESTS_WAITING_METRIC = "RequestsWaiting"
"""Requests queued in the instance's vLLM servers (the sum of their `vllm:num_requests_waiting`),
dimension AutoScalingGroupName."""
MODEL_DIR = "/opt/inf3kit/llm/model"
COMPILED_DIR = "/opt/inf3kit/llm/compiled"

_QUANTIZATION_DTYPES = {"int8": "int8", "fp8": "f8e4m3"}
"""Spec quantization -> NxD Inference `quantization_dtype` (NxD Inference feature guide,
"Quantization")."""


@dataclass(frozen=True)
class Server:
    """One vLLM server on an instance: its index, port and NeuronCore range."""

    index: int
    port: int
    cores: str
    """NEURON_RT_VISIBLE_CORES: an inclusive range such as `8-15`, or one index."""


def server_layout(neuron_cores: int, tensor_parallel: int, base_port: int) -> list[Server]:
    """The servers an instance with `neuron_cores` (logical) NeuronCores runs at this degree.

    Cores left over when the degree does not divide the count stay unused; the construct's
    validation refuses that case before a layout is made.
    """
    servers = []
    for index in range(neuron_cores // tensor_parallel):
        first = index * tensor_parallel
        last = first + tensor_parallel - 1
        cores = str(first) if first == last else f"{first}-{last}"
        servers.append(Server(index, base_port + index, cores))
    return servers


def vllm_arguments(settings: LlmSettings, *, served_model_name: str, port: str) -> list[str]:
    """`vllm serve` arguments for one server (the port may be a variable reference)."""
    args = [
        "serve",
        MODEL_DIR,
        "--served-model-name",
        served_model_name,
        "--tensor-parallel-size",
        str(settings.tensor_parallel),
        "--max-model-len",
        str(settings.max_model_len),
        "--max-num-seqs",
        str(settings.max_num_seqs),
        "--dtype",
        settings.dtype,
        "--host",
        "0.0.0.0",
        "--port",
        port,
    ]
    if settings.quantization is not None:
        # NxD Inference quantizes through its Neuron config, not vLLM's --quantization (vLLM
        # user guide for NxD Inference, "Quantization"); the weights are the quantized
        # checkpoint.
        config = {
            "override_neuron_config": {
                "quantized": True,
                "quantized_checkpoints_path": MODEL_DIR,
                "quantization_dtype": _QUANTIZATION_DTYPES[settings.quantization],
                "quantization_type": "per_channel_symmetric",
            }
        }
        args += ["--additional-config", json.dumps(config, separators=(",", ":"))]
    return args


def engine_environment(settings: LlmSettings, *, compiled: bool) -> dict[str, str]:
    """Variables every server on the instance shares."""
    env = {
        # Caches on the instance's volume, not root's home (the unit protects /root).
        "VLLM_CACHE_ROOT": "/opt/inf3kit/llm/cache",
        "HF_HOME": "/opt/inf3kit/llm/huggingface",
        # The weights are local: the servers never call the Hugging Face Hub (nor need a token).
        "HF_HUB_OFFLINE": "1",
    }
    if compiled:
        env["NEURON_COMPILED_ARTIFACTS"] = COMPILED_DIR
    if settings.quantization == "fp8":
        env["XLA_HANDLE_SPECIAL_SCALAR"] = "1"  # required for f8e4m3 (NxD Inference guide)
    return env
