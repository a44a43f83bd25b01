"""This package's own wheel, shipped with the deploy for instances to install.

inf3kit is not on a public package index, and the runtime on an instance must be the version
that synthesized its stacks. So synthesis builds the wheel of the installed inf3kit (from its
source tree, or repacked from an installed wheel), and fleets and AMI bakes upload it as an S3
asset of their stack by default.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Literal

from aws_cdk import Stack
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

import inf3kit
from inf3kit.constructs.runtime_install import RuntimeWheel

PACKAGE = "inf3kit"
ASSET_ID = "RuntimeWheel"
IndexInstall = Literal["index"]
"""Install inf3kit from the package index (a private one that publishes it) instead."""


def runtime_wheel(cache_dir: Path | None = None) -> Path:
    """The wheel of the running inf3kit, built once per content and kept in `cache_dir`."""
    cache = cache_dir or _default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    root = Path(inf3kit.__file__).resolve().parent.parent
    source = root if (root / "pyproject.toml").is_file() else None
    digest = _digest(source)
    target = cache / digest
    with (cache / f"{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test workers and parallel synths build it once
        built = sorted(target.glob("*.whl"))
        if built:
            return built[0]
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            wheel = _build(source, Path(tmp)) if source else _repack(Path(tmp))
            target.mkdir(exist_ok=True)
            return wheel.rename(target / wheel.name)


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inf3kit" / "wheels"


def _digest(source: Path | None) -> str:
    """Changes whenever a packaged file or the project metadata does."""
    sha = hashlib.sha256(metadata.version(PACKAGE).encode())
    package = Path(inf3kit.__file__).resolve().parent
    files = [p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    if source is not None:
        files.append(source / "pyproject.toml")
    for path in sorted(files):
        sha.update(str(path.relative_to(package.parent)).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def _build(source: Path, out: Path) -> Path:
    """pip builds the wheel with the environment's own setuptools (no download), from a copy:
    setuptools writes `*.egg-info` and `build/` where it builds, and an egg-info beside the
    source would shadow the installed package's metadata."""
    tree = out / "source"
    shutil.copytree(source / PACKAGE, tree / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (source / name).is_file():
            shutil.copy2(source / name, tree / name)
    built = out / "built"
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"]
    done = subprocess.run(
        [*pip, "-w", str(built), str(tree)],
        capture_output=True,
        text=True,
    )
    wheels = sorted(built.glob(f"{PACKAGE}-*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(
            f"could not build the inf3kit wheel from {source}: {done.stderr.strip()[-2000:]}. "
            "Fix: check that `pip wheel --no-deps .` works in that folder"
        )
    with zipfile.ZipFile(wheels[0]) as archive:
        files = {
            name: archive.read(name)
            for name in archive.namelist()
            if not name.endswith("/") and not name.endswith(".dist-info/RECORD")
        }
    return _write(out / wheels[0].name, files)


def _repack(out: Path) -> Path:
    """Rebuild the wheel from an installed (non-editable) inf3kit, as its RECORD lists it,
    without what pip adds at install time (PEP 376 INSTALLER and REQUESTED, PEP 610
    direct_url.json): the same files as the wheel it was installed from."""
    dist = metadata.distribution(PACKAGE)
    info = f"{PACKAGE}-{dist.version}.dist-info"
    added = {f"{info}/{name}" for name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    files = {}
    for file in dist.files or []:
        name = str(file)
        if "__pycache__" in name or name in added:
            continue
        if name.startswith((f"{PACKAGE}/", f"{info}/")):
            files[name] = Path(str(file.locate())).read_bytes()
    return _write(out / f"{PACKAGE}-{dist.version}-py3-none-any.whl", files)


_EPOCH = (1980, 1, 1, 0, 0, 0)


def _write(wheel: Path, files: dict[str, bytes]) -> Path:
    """A reproducible wheel: sorted entries, fixed times and modes, RECORD last.

    The same files give the same bytes whether built from source or repacked from an install,
    so the asset hash (and with it the fleet's user data and the pipeline stack) changes only
    when inf3kit does: a pipeline synthesizing with the wheel it installed does not see a new
    asset and mutate itself on every run.
    """
    info = next(n.split("/")[0] for n in files if n.split("/")[0].endswith(".dist-info"))
    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            data = files[name]
            _add(archive, name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{name},sha256={digest.decode()},{len(data)}")
        records.append(f"{info}/RECORD,,")
        _add(archive, f"{info}/RECORD", ("\n".join(records) + "\n").encode())
    return wheel


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    entry = zipfile.ZipInfo(name, date_time=_EPOCH)
    entry.external_attr = 0o644 << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(entry, data)


def resolve_runtime_wheel(
    scope: Construct, given: RuntimeWheel | IndexInstall | None
) -> RuntimeWheel | None:
    """What a construct installs: the wheel given, this package's own wheel by default, or
    None for `"index"` (pip installs `inf3kit` from the configured package index)."""
    if given == "index":
        return None
    return given or runtime_wheel_asset(Stack.of(scope))


def runtime_wheel_asset(stack: Stack) -> RuntimeWheel:
    """The wheel as an S3 asset of `stack`, made once however many constructs install it."""
    found = stack.node.try_find_child(ASSET_ID)
    asset = found if isinstance(found, s3_assets.Asset) else None
    wheel = runtime_wheel()
    if asset is None:
        asset = s3_assets.Asset(stack, ASSET_ID, path=str(wheel))
    # The asset's key is a content hash; pip reads name and version from the file name.
    return RuntimeWheel(asset.bucket, asset.s3_object_key, wheel.name)
