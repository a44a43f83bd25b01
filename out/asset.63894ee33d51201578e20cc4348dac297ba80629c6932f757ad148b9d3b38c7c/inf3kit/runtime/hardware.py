"""What accelerator this host has, and which bundle variant fits it.

The probe reads only local facts (``/dev/neuron*``, whether ``torch_neuronx`` imports, and the
EC2 instance type that Nitro exposes as the DMI product name), so it works without network
access and is replaceable in tests by passing a :class:`HostHardware` directly.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from inf3kit.runtime.manifest import NEURON_TARGETS, Manifest, ManifestError, Variant

# NeuronCores per device as the Neuron runtime exposes them, i.e. *logical* NeuronCores, which is
# what NEURON_RT_VISIBLE_CORES, neuron_cores_context and `neuron-ls` count. This differs on
# purpose from the catalog (inf3kit/catalog/data/instances.yaml, neuron_cores_per_chip), which
# counts *physical* cores per chip: a Trainium2 chip has 8 physical NeuronCore-v3, and the
# runtime groups them in pairs by default (Logical NeuronCore config, NEURON_LOGICAL_NC_CONFIG,
# default 2 on Trn2), so it exposes 4 logical cores per device ("each Trainium accelerator has 8
# NeuronCores (default 4 Logical NeuronCores)", Neuron docs, PyTorch NeuronX training guide;
# "Logical NeuronCore configuration" page). Trainium3 also has 8 physical NeuronCore-v4 with LNC
# "similar to Trainium2"; its default of 2 is assumed here. inf1/inf2/trn1 have no LNC
# (physical = logical). inf3 is provisional (no published specification). Set
# NEURON_LOGICAL_NC_CONFIG (read below) or INF3KIT_NEURON_CORES when the defaults do not hold.
PHYSICAL_CORES_PER_DEVICE = {"inf1": 4, "inf2": 2, "trn1": 2, "trn2": 8, "inf3": 2, "trn3": 8}
DEFAULT_LNC = {"trn2": 2, "trn3": 2}
CORES_PER_DEVICE = {
    family: cores // DEFAULT_LNC.get(family, 1)
    for family, cores in PHYSICAL_CORES_PER_DEVICE.items()
}
"""Logical NeuronCores per device at the default LNC: inf1 4, inf2/trn1/inf3 2, trn2/trn3 4."""


def logical_cores_per_device(family: str, lnc: str | None = None) -> int:
    """Logical NeuronCores one device of ``family`` exposes under ``NEURON_LOGICAL_NC_CONFIG``.

    ``lnc`` (the variable's value) only applies to the families that support LNC (trn2, trn3);
    an unset or invalid value means the runtime's default.
    """
    physical = PHYSICAL_CORES_PER_DEVICE.get(family, 2)
    if family not in DEFAULT_LNC:
        return physical
    degree = int(lnc) if lnc is not None and lnc.strip() in ("1", "2") else DEFAULT_LNC[family]
    return physical // degree


_DMI_PRODUCT = Path("/sys/devices/virtual/dmi/id/product_name")


@dataclass(frozen=True)
class HostHardware:
    """``target`` is ``cpu`` or a Neuron family; ``neuron_cores`` is 0 on a CPU host."""

    target: str
    neuron_cores: int = 0
    neuron_sdk: bool = False
    detail: str = ""

    @property
    def has_neuron(self) -> bool:
        return self.neuron_cores > 0 and self.neuron_sdk


def _instance_family() -> str | None:
    try:
        product = _DMI_PRODUCT.read_text().strip().lower()
    except OSError:
        return None
    match = re.match(r"(inf\d|trn\d)[a-z]*\.", product)
    return match.group(1) if match else None


def _visible_core_count(spec: str) -> int:
    """Count cores in a NEURON_RT_VISIBLE_CORES value such as ``0-3`` or ``0,2,4``."""
    count = 0
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        count += int(hi) - int(lo) + 1 if hi else 1
    return count


def probe_hardware(
    target_override: str | None = None, cores_override: int | None = None
) -> HostHardware:
    """Detect the host: Neuron devices, SDK importability and the instance family."""
    devices = sorted(glob.glob("/dev/neuron[0-9]*"))
    sdk = importlib.util.find_spec("torch_neuronx") is not None
    family = target_override or _instance_family()
    if not devices:
        detail = "no /dev/neuron* devices"
        return HostHardware("cpu" if family is None else family, 0, sdk, detail)
    family = family or "inf2"
    if cores_override:
        cores = cores_override
    elif os.environ.get("NEURON_RT_VISIBLE_CORES"):
        cores = _visible_core_count(os.environ["NEURON_RT_VISIBLE_CORES"])
    else:
        lnc = os.environ.get("NEURON_LOGICAL_NC_CONFIG")
        cores = len(devices) * logical_cores_per_device(family, lnc)
    detail = f"{len(devices)} Neuron device(s), {cores} NeuronCore(s), torch_neuronx={sdk}"
    return HostHardware(family, cores, sdk, detail)


def select_variant(
    manifest: Manifest,
    host: HostHardware,
    target: str | None = None,
    max_batch_size: int | None = None,
) -> Variant:
    """Pick the variant to serve, refusing rather than silently falling back.

    Without overrides the host's own target wins (an inf3 host serves the inf3 variant, a CPU
    host the cpu variant); among several batch sizes the largest (up to ``max_batch_size``) is
    taken. A Neuron variant is
    never loaded on a host without Neuron devices and ``torch_neuronx``.
    """
    want = target or host.target
    if want in NEURON_TARGETS and not host.has_neuron:
        raise ManifestError(
            f"cannot serve a {want!r} variant on this host ({host.detail or 'no Neuron'}; "
            f"torch_neuronx importable: {host.neuron_sdk}); a Neuron variant needs /dev/neuron* "
            "devices and the Neuron SDK. On a CPU host compile and serve a 'cpu' variant "
            "(`inf3kit compile ... --target cpu`)"
        )
    candidates = [v for v in manifest.variants if v.target == want]
    if max_batch_size is not None:
        candidates = [v for v in candidates if v.batch_size <= max_batch_size]
    if not candidates and not host.has_neuron and all(v.is_neuron for v in manifest.variants):
        have_neuron = ", ".join(f"{v.target}/b{v.batch_size}" for v in manifest.variants)
        raise ManifestError(
            f"bundle {manifest.name!r} has only Neuron variants ({have_neuron}) and this host has "
            f"no usable Neuron device ({host.detail or 'none found'}; torch_neuronx importable: "
            f"{host.neuron_sdk}); a Neuron variant is never run on CPU. Run on a Neuron instance, "
            "or add a cpu variant with `inf3kit compile ... --target cpu`"
        )
    if not candidates:
        have = [f"{v.target}/b{v.batch_size}" for v in manifest.variants] or ["none"]
        wanted = want if max_batch_size is None else f"{want} with batch_size <= {max_batch_size}"
        raise ManifestError(
            f"bundle {manifest.name!r} has no variant for {wanted} (host: {host.target}); "
            f"variants present: {', '.join(have)}. Compile one with "
            f"`inf3kit compile ... --target {want}` or set INF3KIT_TARGET/INF3KIT_MAX_BATCH_SIZE"
        )
    return max(candidates, key=lambda v: v.batch_size)
