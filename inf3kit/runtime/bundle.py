"""Model bundles on disk: open (directory or ``.tar.gz``), verify checksums, pack deterministically.

A bundle is the SageMaker ``ModelDataUrl`` layout: the tarball is unpacked to
``/opt/ml/model`` by SageMaker, or by us when given a ``.tar.gz`` path directly.
"""

from __future__ import annotations

import gzip
import hashlib
import posixpath
import shutil
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from inf3kit.runtime.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    parse_manifest,
    read_manifest,
)

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


DEFAULT_MAX_UNPACKED_BYTES = 128 << 30
"""What an archive may unpack to by default (INF3KIT_MAX_BUNDLE_BYTES): above the largest
compiled models, far below what a decompression bomb asks for."""
DEFAULT_MAX_MEMBERS = 10_000
"""Archive members allowed by default (INF3KIT_MAX_BUNDLE_MEMBERS); a bundle has a few files."""


@dataclass(frozen=True)
class UnpackLimits:
    """Bounds on what unpacking an archive may write (checked on the headers, before writing)."""

    max_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS


def _escapes(name: str) -> bool:
    path = PurePosixPath(name)
    return path.is_absolute() or ".." in path.parts or PureWindowsPath(name).drive != ""


def _check_members(archive: Path, tar: tarfile.TarFile, limits: UnpackLimits) -> None:
    """Refuse, naming the member, absolute or ``..`` paths, links out of the bundle and bombs.

    Reads the headers only (a gzip stream is decompressed once to find them, never written).
    """
    total = 0
    for count, member in enumerate(tar, start=1):
        if count > limits.max_members:
            raise ManifestError(
                f"{archive}: more than {limits.max_members} members; a bundle holds a manifest "
                "and its variant files (raise INF3KIT_MAX_BUNDLE_MEMBERS if this one is genuine)"
            )
        if _escapes(member.name):
            raise ManifestError(
                f"{archive}: member {member.name!r} is an absolute path or leaves the bundle "
                "with '..'; re-create the archive with `inf3kit bundle`"
            )
        if member.issym() or member.islnk():
            base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
            target = posixpath.normpath(str(base / member.linkname))
            if PurePosixPath(member.linkname).is_absolute() or _escapes(target):
                raise ManifestError(
                    f"{archive}: link {member.name!r} -> {member.linkname!r} points outside the "
                    "bundle; re-create the archive with `inf3kit bundle`"
                )
        total += member.size if member.isfile() else 0
        if total > limits.max_bytes:
            raise ManifestError(
                f"{archive}: unpacks to more than {limits.max_bytes} bytes (stopped at member "
                f"{member.name!r}); raise INF3KIT_MAX_BUNDLE_BYTES if this bundle is genuine"
            )


def _unpack(archive: Path, into: Path, limits: UnpackLimits) -> Path:
    if not hasattr(tarfile, "data_filter"):  # Python 3.10 before 3.10.12 (PEP 706 backport)
        raise ManifestError(
            f"{archive}: this Python ({sys.version.split()[0]}) cannot unpack archives safely "
            "(no tarfile extraction filters); upgrade to Python 3.10.12 or later, or unpack the "
            "bundle yourself and serve the directory"
        )
    try:
        with tarfile.open(archive, "r:*") as tar:
            _check_members(archive, tar, limits)
            tar.extractall(into, filter="data")
    except ManifestError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        # A truncated gzip stream raises EOFError, a corrupt one zlib.error: name the archive.
        raise ManifestError(
            f"{archive}: cannot unpack the bundle archive ({type(exc).__name__}: {exc}); "
            "the file is truncated or corrupt, re-create or re-download it"
        ) from None
    return into


def open_bundle(
    path: str | Path, unpack_dir: Path | None = None, limits: UnpackLimits | None = None
) -> Bundle:
    """Open a bundle directory or archive and parse its manifest (checksums are not read yet).

    An archive is unpacked, within ``limits``, into ``unpack_dir`` (the caller's, left in place
    on failure) or, when that is ``None``, into a new temporary directory that is removed if
    opening fails and is otherwise the caller's to remove with :meth:`Bundle.remove`.
    """
    limits = limits or UnpackLimits()
    source = Path(path)
    if not source.exists():
        raise ManifestError(
            f"{source}: bundle not found; pass a bundle directory or .tar.gz "
            "(INF3KIT_MODEL_DIR, default /opt/ml/model)"
        )
    if not source.is_file():
        return Bundle(source, read_manifest(source))
    if unpack_dir is not None:
        root = _unpack(source, unpack_dir, limits)
        return Bundle(root, read_manifest(root))
    root = Path(tempfile.mkdtemp(prefix="inf3kit-bundle-"))
    try:
        return Bundle(_unpack(source, root, limits), read_manifest(root), temporary=True)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def peek_manifest(path: str | Path) -> Manifest:
    """The manifest of a bundle directory or archive, without unpacking the archive.

    Synthesis reads it to check the compiled variants against what will serve them; the model
    files are never read or extracted.
    """
    source = Path(path)
    if not source.is_file():
        return read_manifest(source)
    try:
        with tarfile.open(source, mode="r:*") as tar:
            # `inf3kit bundle` packs the manifest before the model files: stop at it.
            for member in tar:
                if member.name.removeprefix("./") == MANIFEST_NAME and member.isfile():
                    data = tar.extractfile(member)
                    assert data is not None  # a regular file member always has data
                    return parse_manifest(data.read(), f"{source}:{MANIFEST_NAME}")
            raise KeyError(MANIFEST_NAME)
    except KeyError:
        raise ManifestError(
            f"{source}: no {MANIFEST_NAME} at the archive's root; pack the bundle with "
            "`inf3kit bundle`"
        ) from None
    except (tarfile.TarError, OSError) as exc:
        raise ManifestError(f"{source}: not a readable .tar.gz bundle ({exc})") from None


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
