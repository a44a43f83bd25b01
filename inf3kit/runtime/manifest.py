"""The bundle manifest (``inf3kit-manifest.json``): schema, parsing and error messages.

The manifest is the contract between ``inf3kit compile`` and the server: it names the tensors
with Open Inference Protocol datatypes and lists compiled variants with checksums. It is
versioned (``format_version``) so that a newer server can refuse, by name, a format it does
not understand instead of guessing. Format 2 adds shape buckets: a dimension may be a name
(``"seq"``) whose value each variant fixes (``dims``), and inputs carry the value padding fills
with. ``inf3kit compile`` writes format 1 whenever a bundle has no named dimension, so servers
that only know format 1 keep reading it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from inf3kit.runtime.datatypes import Datatype

MANIFEST_NAME = "inf3kit-manifest.json"
FORMAT_VERSION = 1
BUCKETS_FORMAT_VERSION = 2
FORMAT_VERSIONS = (FORMAT_VERSION, BUCKETS_FORMAT_VERSION)
DIM_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,31}$"

Target = Literal["cpu", "inf1", "inf2", "inf3", "trn1", "trn2", "trn3"]
NEURON_TARGETS: tuple[str, ...] = ("inf1", "inf2", "inf3", "trn1", "trn2", "trn3")
TARGETS: tuple[str, ...] = ("cpu", *NEURON_TARGETS)


class ManifestError(ValueError):
    """A bundle or manifest problem; the message names the field, the value and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    """One input or output tensor; ``shape`` excludes the batch dimension.

    Format 2 (shape buckets): ``dynamic`` maps an axis of ``shape`` to the name of a bucketed
    dimension whose value each variant fixes; ``shape`` then holds the largest bucket, so code
    that reads shapes alone sees the largest static shape. ``pad`` is what pads an input's
    bucketed axes up to its bucket.
    """

    name: str = Field(min_length=1, max_length=128)
    datatype: Datatype
    shape: tuple[int, ...]
    dynamic: dict[int, str] = Field(default_factory=dict)
    pad: int | float | None = None

    @field_validator("shape")
    @classmethod
    def _positive(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in shape):
            raise ValueError(
                f"every dimension must be a positive integer (compiled shapes are static; "
                f"bucketed dimensions are named in 'dynamic'), got {list(shape)}"
            )
        return shape

    @model_validator(mode="after")
    def _axes(self) -> TensorSpec:
        for axis, name in self.dynamic.items():
            if not 0 <= axis < len(self.shape) or not re.match(DIM_NAME, name):
                raise ValueError(
                    f"dynamic: axis {axis} -> {name!r} needs an axis of shape {list(self.shape)} "
                    "and a dimension name (letters, digits, _)"
                )
        return self

    @property
    def dim_names(self) -> tuple[str, ...]:
        return tuple(self.dynamic[a] for a in sorted(self.dynamic))

    def concrete(self, dims: Mapping[str, int]) -> tuple[int, ...]:
        """The shape with each bucketed axis set to its dimension's value in ``dims``."""
        return tuple(
            dims[self.dynamic[a]] if a in self.dynamic else d for a, d in enumerate(self.shape)
        )


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
    dims: dict[str, int] = Field(default_factory=dict)
    """The value of every named dimension in this file (format 2, shape buckets)."""

    @property
    def key(self) -> tuple[str, int, tuple[tuple[str, int], ...]]:
        return (self.target, self.batch_size, tuple(sorted(self.dims.items())))

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
    """The whole manifest; ``format_version`` 1, or 2 with named (bucketed) dimensions."""

    format_version: int
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    version: str = Field(default="1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    inputs: tuple[TensorSpec, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)
    variants: tuple[Variant, ...] = ()

    @field_validator("format_version")
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value not in FORMAT_VERSIONS:
            raise ValueError(
                f"this inf3kit understands format_version {' and '.join(map(str, FORMAT_VERSIONS))}"
                f", got {value}; upgrade inf3kit or re-create the bundle with `inf3kit compile`"
            )
        return value

    @model_validator(mode="after")
    def _unique(self) -> Manifest:
        for kind, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            names = [s.name for s in specs]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate tensor names {dupes}; names must be unique")
        keys = [v.key for v in self.variants]
        dupes_v = sorted({k for k in keys if keys.count(k) > 1})
        if dupes_v:
            raise ValueError(
                f"variants: more than one variant for (target, batch_size, dims) {dupes_v}; "
                "keep one per combination"
            )
        self._check_dims()
        return self

    @property
    def dim_names(self) -> tuple[str, ...]:
        """Named (bucketed) dimensions, in order of first appearance in the inputs."""
        return tuple(dict.fromkeys(d for s in self.inputs for d in s.dim_names))

    def _check_dims(self) -> None:
        names = self.dim_names
        if names and self.format_version < BUCKETS_FORMAT_VERSION:
            raise ValueError(
                f"named dimensions {list(names)} need format_version {BUCKETS_FORMAT_VERSION}"
            )
        stray = sorted({d for s in self.outputs for d in s.dim_names} - set(names))
        if stray:
            raise ValueError(f"outputs name dimensions {stray} that no input has")
        for i, v in enumerate(self.variants):
            if set(v.dims) != set(names) or any(n < 1 for n in v.dims.values()):
                raise ValueError(
                    f"variants[{i}].dims {v.dims} must give every named dimension "
                    f"{list(names)} a positive value"
                )

    def buckets(self, target: str, batch_size: int) -> tuple[Variant, ...]:
        """The variants of one (target, batch) that differ only in ``dims``, smallest first."""
        found = [v for v in self.variants if (v.target, v.batch_size) == (target, batch_size)]
        return tuple(sorted(found, key=lambda v: sorted(v.dims.items())))

    def with_variants(self, variants: Sequence[Variant]) -> Manifest:
        """Return a copy in which ``variants`` replace those of their (target, batch size)."""
        pairs = {(v.target, v.batch_size) for v in variants}
        kept = tuple(v for v in self.variants if (v.target, v.batch_size) not in pairs)
        ordered = sorted((*kept, *variants), key=lambda v: v.key)
        return self.model_copy(update={"variants": tuple(ordered)})

    def with_variant(self, variant: Variant) -> Manifest:
        """Return a copy in which ``variant`` replaces any variant with its target and batch."""
        return self.with_variants([variant])

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        # The format-2 fields are left out when unused: such a manifest is format 1 exactly.
        for spec in (*data["inputs"], *data["outputs"]):
            if spec["pad"] is None:
                del spec["pad"]
            if not spec["dynamic"]:
                del spec["dynamic"]
        for variant in data["variants"]:
            if not variant["dims"]:
                del variant["dims"]
        return json.dumps(data, indent=2) + "\n"


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
