"""The bundle manifest (``inf3kit-manifest.json``): schema, parsing and error messages.

The manifest is the contract between ``inf3kit compile`` and the server: it names the tensors
with Open Inference Protocol datatypes and lists compiled variants with checksums. It is
versioned (``format_version``) so that a newer server can refuse, by name, a format it does
not understand instead of guessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from inf3kit.runtime.datatypes import Datatype

MANIFEST_NAME = "inf3kit-manifest.json"
FORMAT_VERSION = 1

Target = Literal["cpu", "inf1", "inf2", "inf3", "trn1", "trn2", "trn3"]
NEURON_TARGETS: tuple[str, ...] = ("inf1", "inf2", "inf3", "trn1", "trn2", "trn3")
TARGETS: tuple[str, ...] = ("cpu", *NEURON_TARGETS)


class ManifestError(ValueError):
    """A bundle or manifest problem; the message names the field, the value and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    """One input or output tensor; ``shape`` excludes the batch dimension."""

    name: str = Field(min_length=1, max_length=128)
    datatype: Datatype
    shape: tuple[int, ...]

    @field_validator("shape")
    @classmethod
    def _positive(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in shape):
            raise ValueError(
                f"every dimension must be a positive integer (compiled shapes are static), "
                f"got {list(shape)}"
            )
        return shape


class Compiler(_Strict):
    """What produced a variant file, so a rebuild can be reproduced."""

    name: str
    version: str
    args: tuple[str, ...] = ()


class Variant(_Strict):
    """One compiled artefact of the model for one target and one batch size."""

    target: Target
    file: str = Field(min_length=1)
    batch_size: int = Field(ge=1, le=65536)
    neuron_cores_per_replica: int = Field(default=1, ge=1, le=128)
    compiler: Compiler
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("file")
    @classmethod
    def _relative(cls, file: str) -> str:
        path = Path(file)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError(
                f"must be a path relative to the bundle directory without '..', got {file!r}"
            )
        return file

    @property
    def is_neuron(self) -> bool:
        return self.target in NEURON_TARGETS


class Manifest(_Strict):
    """The whole manifest; ``format_version`` must be 1."""

    format_version: int
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    version: str = Field(default="1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    inputs: tuple[TensorSpec, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)
    variants: tuple[Variant, ...] = ()

    @field_validator("format_version")
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value != FORMAT_VERSION:
            raise ValueError(
                f"this inf3kit understands format_version {FORMAT_VERSION}, got {value}; "
                "upgrade inf3kit or re-create the bundle with `inf3kit compile`"
            )
        return value

    @model_validator(mode="after")
    def _unique(self) -> Manifest:
        for kind, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            names = [s.name for s in specs]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate tensor names {dupes}; names must be unique")
        keys = [(v.target, v.batch_size) for v in self.variants]
        dupes_v = sorted({k for k in keys if keys.count(k) > 1})
        if dupes_v:
            raise ValueError(
                f"variants: more than one variant for (target, batch_size) {dupes_v}; "
                "keep one per pair"
            )
        return self

    def with_variant(self, variant: Variant) -> Manifest:
        """Return a copy in which ``variant`` replaces any variant with its target and batch."""
        kept = tuple(
            v
            for v in self.variants
            if (v.target, v.batch_size) != (variant.target, variant.batch_size)
        )
        ordered = sorted((*kept, variant), key=lambda v: (v.target, v.batch_size))
        return self.model_copy(update={"variants": tuple(ordered)})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"{source}: {err.error_count()} problem(s) in the manifest"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "literal_error" and e["loc"] and e["loc"][-1] == "target":
            msg += "; compile a variant for one of these targets with `inf3kit compile --target`"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field; remove it (check the spelling against docs/runtime.md)"
        value = e.get("input")
        shown = "" if e["type"] == "missing" else f" (got {value!r})"
        lines.append(f"  - {where}: {msg}{shown}")
    return "\n".join(lines)


def parse_manifest(text: str | bytes, source: str = MANIFEST_NAME) -> Manifest:
    """Parse and validate manifest JSON, raising :class:`ManifestError` listing every problem."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"{source}: not valid JSON ({exc}); the manifest is corrupt, re-create it with "
            "`inf3kit compile`"
        ) from None
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: the manifest must be a JSON object")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(_describe(exc, source)) from None


def read_manifest(bundle_dir: Path) -> Manifest:
    """Read ``inf3kit-manifest.json`` from an unpacked bundle directory."""
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(
            f"{path}: no manifest; a bundle is a directory (or .tar.gz) with {MANIFEST_NAME} "
            "at its root, created by `inf3kit compile`"
        )
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror})") from None
    return parse_manifest(text, str(path))


def write_manifest(bundle_dir: Path, manifest: Manifest) -> Path:
    path = bundle_dir / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.to_json())
    tmp.replace(path)
    return path
