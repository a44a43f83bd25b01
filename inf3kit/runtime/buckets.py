"""Shape buckets: the compiled shapes of one model, and which one a request is padded to.

Neuron models have static shapes, so a model taking sequences is compiled for a few lengths
(``inf3kit compile --dim seq=64,128,512``). A request is padded to the smallest bucket that
fits it, batched only with requests of that bucket, and its outputs whose dimensions follow a
bucketed input dimension are cut back to the request's own length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from inf3kit.runtime.datatypes import NUMPY_DTYPES
from inf3kit.runtime.manifest import Manifest, Variant


class ShapeBuckets:
    """The buckets of one served (target, batch size), smallest first; one for static models."""

    def __init__(self, manifest: Manifest, variants: Sequence[Variant]) -> None:
        inputs = manifest.inputs
        ordered = sorted(variants, key=lambda v: sum(math.prod(s.concrete(v.dims)) for s in inputs))
        self.dims = [dict(v.dims) for v in ordered] or [{}]
        self.variants = tuple(ordered)
        self.input_shapes = [[s.concrete(d) for s in inputs] for d in self.dims]
        self.output_shapes = [[s.concrete(d) for s in manifest.outputs] for d in self.dims]
        self.dtypes = [NUMPY_DTYPES[s.datatype] for s in inputs]
        self.pads = [s.pad or 0 for s in inputs]
        self.bucketed = bool(manifest.dim_names)
        self._trims = [
            (i, sorted(s.dynamic.items())) for i, s in enumerate(manifest.outputs) if s.dynamic
        ]

    @classmethod
    def static(cls, input_shapes: Sequence[tuple[tuple[int, ...], np.dtype]]) -> ShapeBuckets:
        """One bucket of fixed input shapes (a model without named dimensions)."""
        buckets = cls.__new__(cls)
        buckets.dims, buckets.variants = [{}], ()
        buckets.input_shapes = [[shape for shape, _ in input_shapes]]
        buckets.output_shapes = [[]]
        buckets.dtypes = [dtype for _, dtype in input_shapes]
        buckets.pads = [0] * len(input_shapes)
        buckets.bucketed = False
        buckets._trims = []
        return buckets

    def __len__(self) -> int:
        return len(self.dims)

    def choose(self, dims: Mapping[str, int]) -> int:
        """The smallest bucket every dimension of ``dims`` fits in (the request was checked
        against the largest, so one always does)."""
        for index, bucket in enumerate(self.dims):
            if all(dims[name] <= value for name, value in bucket.items()):
                return index
        raise ValueError(f"no bucket fits {dims}; the largest is {self.dims[-1]}")

    def trim(self, outputs: list[np.ndarray], dims: Mapping[str, int]) -> list[np.ndarray]:
        """Cut the outputs' bucketed axes back to the request's values (views, no copy)."""
        for index, axes in self._trims:
            cut = [slice(None)] * outputs[index].ndim
            for axis, name in axes:
                cut[axis + 1] = slice(0, dims[name])
            outputs[index] = outputs[index][tuple(cut)]
        return outputs
