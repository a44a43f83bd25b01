"""``inf3kit compile``: trace a model factory into a bundle variant and update the manifest.

``torch.jit.trace`` for ``cpu`` and ``torch_neuronx.trace`` for Neuron targets produce the same
kind of artefact (a TorchScript file), so one loader serves both and the CPU flow here exercises
the same bundle path a Neuron host uses.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from inf3kit.runtime.bundle import sha256_file
from inf3kit.runtime.datatypes import NUMPY_DTYPES, TORCH_DTYPE_NAMES, datatype_of_torch
from inf3kit.runtime.manifest import (
    BUCKETS_FORMAT_VERSION,
    DIM_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    NEURON_TARGETS,
    TARGETS,
    Compiler,
    Manifest,
    ManifestError,
    TensorSpec,
    Variant,
    read_manifest,
    write_manifest,
)

NEURON_INSTALL_HINT = (
    "install the Neuron SDK on a Neuron host: `pip install torch-neuronx neuronx-cc "
    "--extra-index-url https://pip.repos.neuron.amazonaws.com` (the Neuron DLAMI ships it in "
    "/opt/aws_neuronx_venv_pytorch_*), or compile `--target cpu` here"
)


class CompileError(ValueError):
    """Compilation cannot proceed; the message says why and what to do."""


def parse_tensor_arg(text: str) -> TensorSpec:
    """Parse ``NAME:DTYPE:SHAPE`` (shape without the batch dim, ``3x224x224`` or ``3,224,224``).

    A dimension may be a name (``ids:INT64:seq``): a bucketed dimension, given values by
    ``--dim seq=16,32,64``.
    """
    parts = text.split(":")
    if len(parts) != 3:
        raise CompileError(f"--input {text!r}: expected NAME:DTYPE:SHAPE, e.g. INPUT__0:FP32:32")
    name, datatype, shape_text = parts
    datatype = datatype.upper()
    if datatype not in NUMPY_DTYPES:
        raise CompileError(
            f"--input {text!r}: datatype {datatype!r} is not one of {', '.join(NUMPY_DTYPES)}"
        )
    dims = [d for d in re.split(r"[x,]", shape_text) if d]
    ok = [(d.isdigit() and int(d) > 0) or re.match(DIM_NAME, d) is not None for d in dims]
    if not dims or not all(ok):
        raise CompileError(
            f"--input {text!r}: shape {shape_text!r} must be positive integers or dimension "
            "names, such as 32, 3x224x224 or seq"
        )
    # A named axis holds 1 until compile knows its largest bucket.
    shape = tuple(int(d) if d.isdigit() else 1 for d in dims)
    dynamic = {a: d for a, d in enumerate(dims) if not d.isdigit()}
    return TensorSpec(name=name, datatype=datatype, shape=shape, dynamic=dynamic)


def parse_dim_arg(text: str) -> tuple[str, tuple[int, ...]]:
    """Parse ``NAME=V1,V2,...``: the bucket values of a named dimension, e.g. ``seq=16,32,64``."""
    name, sep, values = text.partition("=")
    parts = values.split(",")
    if (
        not sep
        or not re.match(DIM_NAME, name)
        or not all(v.isdigit() and int(v) > 0 for v in parts)
    ):
        raise CompileError(f"--dim {text!r}: expected NAME=V1,V2,... such as seq=16,32,64")
    return name, tuple(sorted({int(v) for v in parts}))


def parse_pad_arg(text: str) -> tuple[str, float]:
    """Parse ``INPUT=VALUE``: what pads that input's named dimensions (default 0)."""
    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not name or not math.isfinite(number):
        raise CompileError(f"--pad {text!r}: expected INPUT=NUMBER such as mask=0")
    return name, int(number) if number.is_integer() else number


@contextlib.contextmanager
def _cwd_on_path() -> Iterator[None]:
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(cwd)


def load_factory(ref: str) -> Callable[[], Any]:
    """Resolve ``package.module:function`` or ``path/to/file.py:function``."""
    module_ref, sep, attr = ref.rpartition(":")
    if not sep or not module_ref or not attr:
        raise CompileError(f"factory {ref!r}: expected module:function or path/to/file.py:function")
    try:
        if module_ref.endswith(".py"):
            spec = importlib.util.spec_from_file_location(Path(module_ref).stem, module_ref)
            if spec is None or spec.loader is None:
                raise CompileError(f"factory {ref!r}: cannot load {module_ref}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            with _cwd_on_path():
                module = importlib.import_module(module_ref)
    except (ImportError, FileNotFoundError) as exc:
        raise CompileError(f"factory {ref!r}: cannot import {module_ref!r} ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise CompileError(f"factory {ref!r}: {module_ref!r} has no callable {attr!r}")
    return factory


def _example_inputs(
    torch: Any, specs: Sequence[TensorSpec], batch: int, dims: dict[str, int]
) -> tuple[Any, ...]:
    generator = torch.Generator().manual_seed(0)
    tensors = []
    for spec in specs:
        dtype = getattr(torch, TORCH_DTYPE_NAMES[spec.datatype])
        shape = (batch, *spec.concrete(dims))
        if dtype.is_floating_point:
            tensors.append(torch.randn(shape, generator=generator).to(dtype))
        else:
            tensors.append(torch.zeros(shape, dtype=dtype))
    return tuple(tensors)


def _trace(
    torch: Any, model: Any, example: tuple[Any, ...], target: str, args: Sequence[str]
) -> tuple[Any, Compiler]:
    if target == "cpu":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            traced = torch.jit.freeze(torch.jit.trace(model, example))
        return traced, Compiler(name="torch.jit.trace", version=torch.__version__, args=tuple(args))
    if target == "inf1":
        raise CompileError(
            "target 'inf1' needs torch-neuron (Neuron SDK 1.x, neuron-cc), which inf3kit does not "
            "drive; trace with torch_neuron.trace yourself, or target inf2/inf3/trn*"
        )
    try:
        import torch_neuronx
    except ImportError:
        raise CompileError(
            f"target {target!r} needs torch_neuronx, which is not importable: {NEURON_INSTALL_HINT}"
        ) from None
    traced = torch_neuronx.trace(model, example, compiler_args=list(args))
    version = getattr(torch_neuronx, "__version__", "unknown")
    with contextlib.suppress(ImportError):
        import neuronxcc

        version = f"{version} (neuronx-cc {neuronxcc.__version__})"
    return traced, Compiler(name="torch_neuronx.trace", version=version, args=tuple(args))


def _output_specs(outputs: Any, names: Sequence[str], batch: int) -> list[TensorSpec]:
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    elif not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    if names and len(names) != len(outputs):
        raise CompileError(
            f"--output gives {len(names)} name(s), the model returns {len(outputs)} tensor(s)"
        )
    specs = []
    for i, tensor in enumerate(outputs):
        if tensor.dim() == 0 or tensor.shape[0] != batch:
            raise CompileError(
                f"output {i} has shape {list(tensor.shape)}; outputs must keep the batch dimension "
                f"({batch}) first"
            )
        datatype = datatype_of_torch(str(tensor.dtype).removeprefix("torch."))
        name = names[i] if names else f"OUTPUT__{i}"
        specs.append(TensorSpec(name=name, datatype=datatype, shape=tuple(tensor.shape[1:])))
    return specs


def _buckets(
    inputs: Sequence[TensorSpec], dims: Mapping[str, Sequence[int]]
) -> list[dict[str, int]]:
    """Every combination of the named dimensions' values (one empty dict without names)."""
    names = list(dict.fromkeys(d for s in inputs for d in s.dim_names))
    if sorted(names) != sorted(dims):
        raise CompileError(
            f"--dim must give values for exactly the named dimensions of the inputs {names}, "
            f"got {sorted(dims)}"
        )
    short = [n for n in names if len(dims[n]) < 2]
    if short:
        raise CompileError(
            f"--dim {short[0]}: give at least two values; a single length is a static shape, "
            "write it as a number in --input"
        )
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*dims.values())]


def _name_output_dims(
    per_bucket: list[list[TensorSpec]], buckets: list[dict[str, int]]
) -> list[TensorSpec]:
    """Name each output dimension that follows a named input dimension across all buckets."""
    named = []
    for i, spec in enumerate(per_bucket[0]):
        shapes = [specs[i].shape for specs in per_bucket]
        if len({len(sh) for sh in shapes}) != 1:
            raise CompileError(f"output {spec.name!r} changes rank between buckets: {shapes}")
        dynamic = {}
        for axis, values in enumerate(zip(*shapes, strict=True)):
            if len(set(values)) == 1:
                continue
            follows = [
                n
                for n in buckets[0]
                if all(b[n] == v for b, v in zip(buckets, values, strict=True))
            ]
            if not follows:
                raise CompileError(
                    f"output {spec.name!r} axis {axis + 1} takes {list(values)} across the "
                    "buckets, which follows no named input dimension; a bucketed output "
                    "dimension must equal one"
                )
            dynamic[axis] = follows[0]
        largest = max(shapes, key=math.prod)
        named.append(spec.model_copy(update={"shape": largest, "dynamic": dynamic}))
    return named


def compile_model(
    factory_ref: str,
    inputs: Sequence[TensorSpec],
    out_dir: Path,
    *,
    target: str = "cpu",
    batch_size: int = 1,
    name: str | None = None,
    version: str | None = None,
    output_names: Sequence[str] = (),
    compiler_args: Sequence[str] = (),
    cores_per_replica: int = 1,
    dims: Mapping[str, Sequence[int]] | None = None,
    pads: Mapping[str, float] | None = None,
) -> tuple[Manifest, Variant]:
    """Trace the factory's model for ``target`` and add (or replace) its variant in the bundle.

    With named input dimensions, ``dims`` gives their bucket values: one variant is traced per
    combination, and ``pads`` (default 0) records per input what pads a request up to a bucket.
    Returns the manifest and the last variant written.
    """
    if target not in TARGETS:
        raise CompileError(f"--target {target!r}: expected one of {', '.join(TARGETS)}")
    if batch_size < 1:
        raise CompileError(f"--batch-size {batch_size}: must be >= 1")
    if not inputs:
        raise CompileError("give at least one --input NAME:DTYPE:SHAPE")
    buckets = _buckets(inputs, dims or {})
    pads = dict(pads or {})
    unknown = sorted(set(pads) - {s.name for s in inputs if s.dim_names})
    if unknown:
        raise CompileError(f"--pad {unknown[0]}: not an input with a named dimension")
    if dims:
        largest = {n: max(v) for n, v in dims.items()}
        inputs = [
            s.model_copy(update={"pad": pads.get(s.name, 0), "shape": s.concrete(largest)})
            if s.dim_names
            else s
            for s in inputs
        ]
    existing = read_manifest(out_dir) if (out_dir / MANIFEST_NAME).is_file() else None
    import torch

    model = load_factory(factory_ref)()
    if not isinstance(model, torch.nn.Module):
        raise CompileError(
            f"factory {factory_ref!r} returned {type(model).__name__}, not a torch.nn.Module"
        )
    model.eval()
    traced_all = []
    per_bucket = []
    for bucket in buckets:
        example = _example_inputs(torch, inputs, batch_size, bucket)
        traced, compiler = _trace(torch, model, example, target, compiler_args)
        with torch.inference_mode():
            per_bucket.append(_output_specs(traced(*example), output_names, batch_size))
        traced_all.append((bucket, traced, compiler))
    outputs = _name_output_dims(per_bucket, buckets)
    base = existing or Manifest(
        format_version=BUCKETS_FORMAT_VERSION if dims else FORMAT_VERSION,
        name=name or _default_name(factory_ref),
        version=version or "1",
        inputs=tuple(inputs),
        outputs=tuple(outputs),
    )
    if existing is not None and (
        existing.inputs != tuple(inputs) or existing.outputs != tuple(outputs)
    ):
        raise ManifestError(
            f"{out_dir}: the bundle's inputs/outputs differ from this model's "
            f"(bundle: {_describe(existing.inputs)} -> {_describe(existing.outputs)}, "
            f"model: {_describe(inputs)} -> {_describe(outputs)}); a bundle holds variants of "
            "one model: use a new --out directory"
        )
    updates = {k: v for k, v in (("name", name), ("version", version)) if v}
    base = base.model_copy(update=updates)
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = []
    for bucket, traced, compiler in traced_all:
        suffix = "".join(f"-{n}{v}" for n, v in bucket.items())
        file = f"model-{target}-b{batch_size}{suffix}.pt"
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.jit.save(traced, str(out_dir / file))
        variants.append(
            Variant(
                target=target,
                file=file,
                batch_size=batch_size,
                neuron_cores_per_replica=cores_per_replica if target in NEURON_TARGETS else 1,
                compiler=compiler,
                sha256=sha256_file(out_dir / file),
                dims=bucket,
            )
        )
    manifest = base.with_variants(variants)
    write_manifest(out_dir, Manifest.model_validate(manifest.model_dump()))
    return manifest, variants[-1]


def _default_name(factory_ref: str) -> str:
    module = factory_ref.rpartition(":")[0].removesuffix(".py")
    stem = re.split(r"[./\\]", module)
    candidates = [s for s in stem if s and s != "model"]
    raw = candidates[-1] if candidates else "model"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", raw) or "model"


def _describe(specs: Sequence[TensorSpec]) -> str:
    return ", ".join(f"{s.name}:{s.datatype}:{'x'.join(map(str, s.shape))}" for s in specs)
