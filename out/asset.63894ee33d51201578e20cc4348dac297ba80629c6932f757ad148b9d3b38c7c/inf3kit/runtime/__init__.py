"""The inf3kit serving runtime: model bundles, compile, and the inference server.

Installed in containers and instances with ``pip install inf3kit[serve]``; it never imports
the CDK parts of inf3kit. torch is imported lazily by the loader and the compiler only.
"""

from inf3kit import __version__
from inf3kit.runtime.bundle import Bundle, open_bundle, pack_bundle, verify_bundle
from inf3kit.runtime.hardware import HostHardware, probe_hardware, select_variant
from inf3kit.runtime.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    TensorSpec,
    Variant,
    parse_manifest,
    read_manifest,
)
from inf3kit.runtime.settings import Settings, load_settings

__all__ = [
    "MANIFEST_NAME",
    "Bundle",
    "HostHardware",
    "Manifest",
    "ManifestError",
    "Settings",
    "TensorSpec",
    "Variant",
    "__version__",
    "load_settings",
    "open_bundle",
    "pack_bundle",
    "parse_manifest",
    "probe_hardware",
    "read_manifest",
    "select_variant",
    "verify_bundle",
]
