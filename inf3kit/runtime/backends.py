"""Devices that execute one padded batch: CPU TorchScript, Neuron, and a simulated accelerator.

Each worker owns one :class:`Backend` replica and calls :meth:`Backend.run` from its own thread,
so a backend never sees two batches at once. torch and torch_neuronx are imported here only,
lazily, so the server imports without them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inf3kit.runtime.datatypes import NUMPY_DTYPES, TORCH_DTYPE_NAMES
from inf3kit.runtime.manifest import TensorSpec

log = logging.getLogger("inf3kit.runtime")


class Backend(Protocol):
    """One model replica on one device slice; ``run`` takes and returns full batches."""

    label: str

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...


def _to_torch(torch: Any, array: np.ndarray, datatype: str) -> Any:
    tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if datatype == "BF16" else tensor


def _to_numpy(torch: Any, tensor: Any) -> np.ndarray:
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).cpu().numpy().view(np.uint16)
    return tensor.cpu().numpy()


class TorchScriptBackend:
    """A TorchScript module (``torch.jit.trace`` output, or a Neuron-traced module) on the host."""

    def __init__(
        self,
        module: Any,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        label: str,
    ) -> None:
        import torch

        self._torch = torch
        self._module = module
        self._in_types = [s.datatype for s in inputs]
        self._n_out = len(outputs)
        self.label = label

    @classmethod
    def load_cpu(
        cls, path: Path, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
    ) -> TorchScriptBackend:
        import torch

        module = torch.jit.load(str(path), map_location="cpu").eval()
        return cls(module, inputs, outputs, "cpu")

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        tensors = [_to_torch(torch, a, t) for a, t in zip(inputs, self._in_types, strict=True)]
        with torch.inference_mode():
            result = self._module(*tensors)
        if isinstance(result, dict):
            result = list(result.values())
        elif not isinstance(result, (list, tuple)):
            result = [result]
        if len(result) != self._n_out:
            raise RuntimeError(
                f"the model returned {len(result)} output(s), the manifest declares {self._n_out}"
            )
        return [_to_numpy(torch, t) for t in result]


def load_neuron(
    path: Path,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    start_core: int,
    core_count: int,
) -> TorchScriptBackend:
    """Load a ``torch_neuronx.trace`` artefact onto NeuronCores ``start_core..+core_count``.

    Not exercised in this repository's tests (no Neuron hardware here). It uses the documented
    placement API so each worker's replica owns its own cores and no core hosts two workers.
    """
    import torch
    import torch_neuronx

    with torch_neuronx.experimental.neuron_cores_context(start_nc=start_core, nc_count=core_count):
        module = torch.jit.load(str(path))
    label = f"neuron cores {start_core}-{start_core + core_count - 1}"
    return TorchScriptBackend(module, inputs, outputs, label)


class SimulatedBackend:
    """BENCHMARK INSTRUMENT: sleeps a fixed time per batch and returns zeros.

    It stands in for an accelerator, which keeps the host CPU idle while it computes; it is
    only ever created when INF3KIT_SIMULATED_DEVICE_MS is set explicitly.
    """

    def __init__(
        self,
        seconds_per_batch: float,
        outputs: Sequence[TensorSpec],
        batch: int,
        dims: dict[str, int] | None = None,
    ) -> None:
        self._seconds = seconds_per_batch
        self._outputs = [
            np.zeros((batch, *s.concrete(dims or {})), dtype=NUMPY_DTYPES[s.datatype])
            for s in outputs
        ]
        self.label = f"SIMULATED device ({seconds_per_batch * 1000:g} ms/batch)"

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        time.sleep(self._seconds)
        return self._outputs


class BucketedBackend:
    """The replicas of one device slice for each shape bucket; a batch runs on its bucket's.

    The batcher pads a batch to exactly one bucket's input shapes, which select the replica.
    """

    def __init__(self, by_shapes: dict[tuple[tuple[int, ...], ...], Backend]) -> None:
        self._by_shapes = by_shapes
        first = next(iter(by_shapes.values()))
        self.label = f"{first.label} x {len(by_shapes)} shape buckets"

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._by_shapes[tuple(a.shape[1:] for a in inputs)].run(inputs)


def check_outputs(
    results: Sequence[np.ndarray],
    outputs: Sequence[TensorSpec],
    batch: int,
    dims: dict[str, int] | None = None,
) -> None:
    """Warm-up check: the model's real outputs must match the manifest exactly."""
    for got, spec in zip(results, outputs, strict=True):
        want_shape = (batch, *spec.concrete(dims or {}))
        want_dtype = NUMPY_DTYPES[spec.datatype]
        if tuple(got.shape) != want_shape or got.dtype != want_dtype:
            raise RuntimeError(
                f"output {spec.name!r}: the model produced shape {list(got.shape)} "
                f"{got.dtype}, the manifest declares {list(want_shape)} "
                f"{TORCH_DTYPE_NAMES[spec.datatype]}; re-compile to regenerate the manifest"
            )
