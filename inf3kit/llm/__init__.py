"""Large language models served with vLLM on Neuron: the model's shape, its serving settings,
and whether it fits a tensor-parallel group of NeuronCores.

Shared by the spec (validation), the constructs (LLM endpoints and fleets) and `inf3kit plan`;
imports only `catalog`, never the CDK, so the spec and the runtime side can use it.
"""

from inf3kit.llm.settings import Dtype, LlmSettings, LlmWeights, ModelArchitecture, Quantization

__all__ = ["Dtype", "LlmSettings", "LlmWeights", "ModelArchitecture", "Quantization"]
