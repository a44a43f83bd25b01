"""Model bundles on disk: open (directory or ``.tar.gz``), verify checksums, pack deterministically.

A bundle is the SageMaker ``ModelDataUrl`` layout: the tarball is unpacked to
``/opt/ml/model`` by SageMaker, or by us when given a ``.tar.gz`` path directly.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from inf3kit.runtime.manifest import MANIFEST_NAME, Manifest, ManifestError, read_manifest

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Bundle:
    """An unpacked, validated bundle: its directory and manifest.

    ``temporary`` is true when :func:`open_bundle` unpacked an archive into a directory it
    created itself: the caller then owns ``root`` and must :meth:`remove` it when done.
    """

    root: Path
    manifest: Manifest
    temporary: bool = False

    def path_of(self, file: str) -> Path:
        return self.root / file

    def remove(self) -> None:
        """Delete ``root`` if :func:`open_bundle` created it (a no-op for the caller's dirs)."""
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _unpack(archive: Path, into: Path) -> Path:
    if not hasattr(tarfile, "data_filter"):  # Python 3.10 before 3.10.12 (PEP 706 backport)
        raise ManifestError(
            f"{archive}: this Python ({sys.version.split()[0]}) cannot unpack archives safely "
            "(no tarfile extraction filters); upgrade to Python 3.10.12 or later, or unpack the "
            "bundle yourself and serve the directory"
        )
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ManifestError(f"{archive}: cannot unpack the bundle archive ({exc})") from None
    return into


def open_bundle(path: str | Path, unpack_dir: Path | None = None) -> Bundle:
    """Open a bundle directory or archive and parse its manifest (checksums are not read yet).

    An archive is unpacked into ``unpack_dir`` (the caller's, left in place on failure) or, when
    that is ``None``, into a new temporary directory that is removed if opening fails and is
    otherwise the caller's to remove with :meth:`Bundle.remove`.
    """
    source = Path(path)
    if not source.exists():
        raise ManifestError(
            f"{source}: bundle not found; pass a bundle directory or .tar.gz "
            "(INF3KIT_MODEL_DIR, default /opt/ml/model)"
        )
    if not source.is_file():
        return Bundle(source, read_manifest(source))
    if unpack_dir is not None:
        root = _unpack(source, unpack_dir)
        return Bundle(root, read_manifest(root))
    root = Path(tempfile.mkdtemp(prefix="inf3kit-bundle-"))
    try:
        return Bundle(_unpack(source, root), read_manifest(root), temporary=True)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def verify_bundle(bundle: Bundle) -> None:
    """Check every variant's file exists and matches its sha256; list every problem at once."""
    problems = []
    for i, variant in enumerate(bundle.manifest.variants):
        path = bundle.path_of(variant.file)
        if not path.is_file():
            problems.append(
                f"variants[{i}] ({variant.target}, batch {variant.batch_size}): file "
                f"{variant.file!r} is missing from {bundle.root}; re-run `inf3kit compile` "
                "or restore the file"
            )
            continue
        actual = sha256_file(path)
        if actual != variant.sha256:
            problems.append(
                f"variants[{i}] ({variant.target}, batch {variant.batch_size}): sha256 mismatch "
                f"for {variant.file!r}: manifest says {variant.sha256}, file has {actual}; the "
                "file is corrupt or was changed after compile, re-create the bundle"
            )
    if problems:
        raise ManifestError(
            f"{bundle.root}: bundle failed verification:\n  - " + "\n  - ".join(problems)
        )


def pack_bundle(bundle_dir: Path, out: Path) -> Manifest:
    """Validate ``bundle_dir`` and write a byte-for-byte reproducible ``.tar.gz`` to ``out``.

    Members are sorted with fixed mtime, owner and mode, and the gzip header carries no
    timestamp, so the same bundle always packs to the same sha256 (good for CDK asset hashes).
    """
    bundle = open_bundle(bundle_dir)
    verify_bundle(bundle)
    if not bundle.manifest.variants:
        raise ManifestError(f"{bundle_dir}: the manifest has no variants; run `inf3kit compile`")
    files = [MANIFEST_NAME, *sorted({v.file for v in bundle.manifest.variants})]
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        out.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for d in sorted({str(p) for f in files for p in Path(f).parents if str(p) != "."}):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(_normalise(info))
        for f in files:
            path = bundle_dir / f
            info = tarfile.TarInfo(f)
            info.size, info.mode = path.stat().st_size, 0o644
            with path.open("rb") as fh:
                tar.addfile(_normalise(info), fh)
    return bundle.manifest


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
