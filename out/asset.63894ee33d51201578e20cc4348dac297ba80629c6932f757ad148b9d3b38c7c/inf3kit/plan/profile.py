"""Profiles: measured throughput and latency of one model replica, stored next to the bundle.

A profile is what `inf3kit profile` measured and what `inf3kit plan` and `inf3kit validate`
read. It is per *replica* (one worker on its NeuronCore slice, or one CPU worker), at each
compiled batch size and a few client concurrencies, so plan can multiply it out per instance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROFILE_FORMAT = 1
KNEE_FRACTION = 0.9
"""The knee is the first concurrency reaching this share of the batch size's best throughput:
beyond it more concurrent load adds queueing latency, not throughput."""


class ProfileError(ValueError):
    """A profile file is missing or malformed; the message names the file and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoadPoint(_Strict):
    """Closed-loop load with `concurrency` clients sending one-row requests, for `seconds`."""

    batch_size: int = Field(ge=1)
    concurrency: int = Field(ge=1)
    requests: int = Field(ge=1)
    seconds: float = Field(gt=0)
    samples_per_s: float = Field(gt=0)
    p50_ms: float = Field(ge=0)
    p99_ms: float = Field(ge=0)


class DevicePoint(_Strict):
    """Full compiled batches run back to back on the device, without the batcher."""

    batch_size: int = Field(ge=1)
    batches: int = Field(ge=1)
    batch_p50_ms: float = Field(ge=0)
    samples_per_s: float = Field(gt=0)


class Profile(_Strict):
    format_version: Literal[1] = 1
    model: str
    model_version: str
    target: str
    """The bundle variant target measured: `cpu`, or a catalog family (`inf2`, `g5`, ...)."""
    device: str
    """What ran it: e.g. "cpu (x86_64, 1 torch thread)" or "neuron cores 0-0"."""
    how: str
    """`in-process` (the runtime's batcher and backend, no HTTP) or `http <url>`."""
    when: str
    neuron_cores_per_replica: int = Field(1, ge=1)
    model_bytes: int = Field(0, ge=0)
    """Size of the measured variant file: the weights a replica holds in accelerator memory."""
    max_delay_ms: float = Field(ge=0)
    points: tuple[LoadPoint, ...] = Field(min_length=1)
    device_points: tuple[DevicePoint, ...] = ()

    @property
    def batch_sizes(self) -> list[int]:
        return sorted({p.batch_size for p in self.points})

    def knee(self, batch_size: int) -> LoadPoint:
        """The lowest-concurrency point within KNEE_FRACTION of the best throughput."""
        points = sorted(
            (p for p in self.points if p.batch_size == batch_size), key=lambda p: p.concurrency
        )
        best = max(p.samples_per_s for p in points)
        return next(p for p in points if p.samples_per_s >= KNEE_FRACTION * best)

    def best_knee(self) -> LoadPoint:
        """The knee of the batch size with the highest knee throughput."""
        return max((self.knee(b) for b in self.batch_sizes), key=lambda p: p.samples_per_s)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


def read_profile(path: Path) -> Profile:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"profile {path} is not valid JSON ({exc})") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ProfileError(
            f"profile {path} is invalid: {problems}. Fix: re-create it with `inf3kit profile`"
        ) from None


def profile_path(bundle: Path, target: str) -> Path:
    """Where the last profile of `target` for `bundle` lives.

    Inside a bundle directory, next to its manifest; beside an archive, named after it
    (`model.tar.gz` -> `model.profile-cpu.json`), so the archive's bytes never change.
    """
    if bundle.is_dir():
        return bundle / f"inf3kit-profile-{target}.json"
    stem = bundle.name.removesuffix(".tar.gz").removesuffix(".tgz")
    return bundle.with_name(f"{stem}.profile-{target}.json")


def stored_profiles(bundle: Path) -> list[Profile]:
    """Every profile stored for `bundle` (one per target), in target order."""
    if bundle.is_dir():
        paths = bundle.glob("inf3kit-profile-*.json")
    else:
        stem = bundle.name.removesuffix(".tar.gz").removesuffix(".tgz")
        paths = bundle.parent.glob(f"{stem}.profile-*.json")
    return sorted((read_profile(p) for p in paths), key=lambda p: p.target)


def write_profile(profile: Profile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(profile.to_json())
    tmp.replace(path)
    return path
