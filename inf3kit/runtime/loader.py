"""Turn a bundle path into warmed-up device workers, or a clear error.

This is the blocking part of start-up (unpacking, hashing, loading, warm-up); the app runs it
in a thread so liveness answers meanwhile, and reports ready only once it has returned.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inf3kit.runtime.backends import (
    Backend,
    BucketedBackend,
    SimulatedBackend,
    TorchScriptBackend,
    check_outputs,
    load_neuron,
)
from inf3kit.runtime.bundle import Bundle, UnpackLimits, open_bundle, verify_bundle
from inf3kit.runtime.datatypes import NUMPY_DTYPES
from inf3kit.runtime.hardware import HostHardware, probe_hardware, select_variant
from inf3kit.runtime.manifest import Manifest, ManifestError, Variant
from inf3kit.runtime.settings import Settings

log = logging.getLogger("inf3kit.runtime")


@dataclass(frozen=True)
class LoadedModel:
    """A verified bundle's manifest, the chosen variant and one warmed backend per worker."""

    manifest: Manifest
    variant: Variant
    backends: tuple[Backend, ...]
    bundle: Bundle | None = None
    """The opened bundle; if ``bundle.temporary``, the caller removes it (``bundle.remove()``)."""
    buckets: tuple[Variant, ...] = ()
    """For a model with shape buckets, the variant of each bucket (``variant`` is one of them)."""


def _cpu_backends(path: Path, manifest: Manifest, settings: Settings) -> list[Backend]:
    import torch

    threads = settings.torch_threads or max(1, (os.cpu_count() or 1) // settings.workers)
    torch.set_num_threads(threads)
    log.info("cpu: %d worker(s), %d torch thread(s) each", settings.workers, threads)
    return [
        TorchScriptBackend.load_cpu(path, manifest.inputs, manifest.outputs)
        for _ in range(settings.workers)
    ]


def _neuron_backends(
    path: Path, manifest: Manifest, variant: Variant, host: HostHardware
) -> list[Backend]:
    per = variant.neuron_cores_per_replica
    replicas = host.neuron_cores // per
    if replicas < 1:
        raise ManifestError(
            f"variant {variant.file!r} needs {per} NeuronCores per replica, this host exposes "
            f"{host.neuron_cores}; compile with fewer cores per replica or use a larger instance"
        )
    return [
        load_neuron(path, manifest.inputs, manifest.outputs, i * per, per) for i in range(replicas)
    ]


def warm_up(
    backend: Backend, manifest: Manifest, batch: int, dims: dict[str, int] | None = None
) -> None:
    """Run one zero batch so the first request does not pay for lazy initialisation."""
    inputs = [
        np.zeros((batch, *s.concrete(dims or {})), dtype=NUMPY_DTYPES[s.datatype])
        for s in manifest.inputs
    ]
    check_outputs(backend.run(inputs), manifest.outputs, batch, dims)


def load_model(
    settings: Settings, host: HostHardware | None = None, unpack_dir: Path | None = None
) -> LoadedModel:
    """Open, verify, select, load and warm up; raises :class:`ManifestError` on refusal.

    A ``.tar.gz`` bundle is unpacked into ``unpack_dir`` (the caller's to remove), else into a
    temporary directory that is removed here when loading fails and otherwise belongs to the
    caller through :attr:`LoadedModel.bundle`.
    """
    limits = UnpackLimits(settings.max_bundle_bytes, settings.max_bundle_members)
    bundle = open_bundle(settings.model_dir, unpack_dir, limits)
    try:
        return _load(bundle, settings, host)
    except BaseException:
        bundle.remove()
        raise


def _load(bundle: Bundle, settings: Settings, host: HostHardware | None) -> LoadedModel:
    verify_bundle(bundle)
    manifest = bundle.manifest
    host = host or probe_hardware(settings.target, settings.neuron_cores)
    variant = select_variant(manifest, host, settings.target, settings.max_batch_size)
    # A model with shape buckets serves every bucket of the chosen target and batch size.
    buckets = manifest.buckets(variant.target, variant.batch_size) if manifest.dim_names else ()
    per_bucket = [_loaded(bundle, manifest, v, host, settings) for v in buckets or (variant,)]
    if buckets:
        shapes = [tuple(s.concrete(v.dims) for s in manifest.inputs) for v in buckets]
        workers: list[Backend] = [
            BucketedBackend(dict(zip(shapes, replicas, strict=True)))
            for replicas in zip(*per_bucket, strict=True)
        ]
    else:
        workers = per_bucket[0]
    log.info(
        "loaded %s %s: variant %s batch %d from %s on %s",
        manifest.name,
        manifest.version,
        variant.target,
        variant.batch_size,
        ", ".join(v.file for v in buckets) or variant.file,
        ", ".join(b.label for b in workers),
    )
    return LoadedModel(manifest, variant, tuple(workers), bundle, buckets)


def _loaded(
    bundle: Bundle, manifest: Manifest, variant: Variant, host: HostHardware, settings: Settings
) -> list[Backend]:
    path = bundle.path_of(variant.file)
    try:
        return _backends(path, manifest, variant, host, settings)
    except ManifestError:
        raise
    except Exception as exc:
        # torch's own messages rarely name the file: every load error here does.
        raise ManifestError(
            f"{path}: variant {variant.target}/b{variant.batch_size} failed to load or warm "
            f"up ({type(exc).__name__}: {exc})"
        ) from exc


def _backends(
    path: Path, manifest: Manifest, variant: Variant, host: HostHardware, settings: Settings
) -> list[Backend]:
    backends: list[Backend]
    if settings.simulated_device_ms is not None:
        log.warning(
            "SIMULATED DEVICE (benchmark instrument): %s ms per batch on %d worker(s); outputs "
            "are zeros, the model file is not run",
            settings.simulated_device_ms,
            settings.workers,
        )
        seconds = settings.simulated_device_ms / 1000
        backends = [
            SimulatedBackend(seconds, manifest.outputs, variant.batch_size, variant.dims)
            for _ in range(settings.workers)
        ]
    elif variant.is_neuron:
        backends = _neuron_backends(path, manifest, variant, host)
    else:
        backends = _cpu_backends(path, manifest, settings)
    for backend in backends:
        warm_up(backend, manifest, variant.batch_size, variant.dims)
    return backends
