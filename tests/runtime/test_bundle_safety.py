"""Hostile or broken bundle archives: bounded unpacking, no escapes, every error names the file."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import refusal

from inf3kit.runtime.bundle import UnpackLimits, open_bundle, pack_bundle
from inf3kit.runtime.manifest import MANIFEST_NAME, ManifestError


def archive(path: Path, bundle: Path, extra: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A .tar.gz of ``bundle``'s files plus ``extra`` members, as an attacker would write it."""
    with tarfile.open(path, "w:gz") as tar:
        for file in sorted(bundle.iterdir()):
            tar.add(file, arcname=file.name)
        for info, data in extra:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def test_fails_when_an_archive_unpacks_beyond_the_limit(demo_bundle: Path, tmp_path: Path) -> None:
    bomb = archive(
        tmp_path / "bomb.tar.gz", demo_bundle, [(tarfile.TarInfo("pad.bin"), bytes(64 << 20))]
    )
    assert bomb.stat().st_size < 1 << 20  # 64 MiB of zeros compress to well under 1 MiB
    code, statuses, log = refusal(bomb, tmp_path, INF3KIT_MAX_BUNDLE_BYTES=str(16 << 20))
    assert code == 3 and 200 not in statuses
    assert (
        f"{bomb}: unpacks to more than {16 << 20} bytes (stopped at member 'pad.bin'); "
        "raise INF3KIT_MAX_BUNDLE_BYTES if this bundle is genuine"
    ) in log


def test_fails_when_an_archive_has_too_many_members(demo_bundle: Path, tmp_path: Path) -> None:
    many = [(tarfile.TarInfo(f"f{i}.txt"), b"x") for i in range(20)]
    path = archive(tmp_path / "many.tar.gz", demo_bundle, many)
    with pytest.raises(ManifestError, match=f"^{path}: more than 10 members"):
        open_bundle(path, limits=UnpackLimits(max_members=10))
    open_bundle(path).remove()  # the default allows it


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ((tarfile.TarInfo("/abs.txt"), b"x"), "member '/abs.txt' is an absolute path or leaves"),
        ((tarfile.TarInfo("a/../../up.txt"), b"x"), "member 'a/../../up.txt' is an absolute path"),
        (link("evil", "../../etc/passwd"), "link 'evil' -> '../../etc/passwd' points outside"),
        (link("sub/evil", "../../x"), "link 'sub/evil' -> '../../x' points outside the bundle"),
        (link("abs", "/etc/passwd"), "link 'abs' -> '/etc/passwd' points outside the bundle"),
        (link("hard", "../x", tarfile.LNKTYPE), "link 'hard' -> '../x' points outside"),
    ],
    ids=["absolute", "dot-dot", "symlink up", "nested symlink up", "absolute symlink", "hardlink"],
)
def test_fails_when_a_member_escapes_the_bundle(
    demo_bundle: Path, tmp_path: Path, member: tuple[tarfile.TarInfo, bytes], message: str
) -> None:
    path = archive(tmp_path / "evil.tar.gz", demo_bundle, [member])
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(ManifestError) as err:
        open_bundle(path, unpack_dir=into)
    assert str(err.value).startswith(f"{path}: {message}")
    assert list(into.iterdir()) == []  # refused before anything was written


def test_a_link_inside_the_bundle_is_fine(demo_bundle: Path, tmp_path: Path) -> None:
    path = archive(tmp_path / "ok.tar.gz", demo_bundle, [link("sub/alias", "../" + MANIFEST_NAME)])
    bundle = open_bundle(path)
    assert bundle.manifest.name == "sentiment"
    bundle.remove()


def test_fails_naming_the_archive_when_it_is_truncated(demo_bundle: Path, tmp_path: Path) -> None:
    packed = tmp_path / "model.tar.gz"
    pack_bundle(demo_bundle, packed)
    packed.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    code, statuses, log = refusal(packed, tmp_path)
    assert code == 3 and 200 not in statuses
    assert f"{packed}: cannot unpack the bundle archive (EOFError: " in log
    assert "the file is truncated or corrupt, re-create or re-download it" in log


def test_fails_naming_the_manifest_when_it_is_corrupt(demo_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(demo_bundle, bundle)
    (bundle / MANIFEST_NAME).write_bytes(b'{"name": "\xff\xfe garbage')
    code, _, log = refusal(bundle, tmp_path)
    assert code == 3
    assert f"{bundle / MANIFEST_NAME}: not valid JSON (" in log


def test_fails_naming_the_variant_file_torch_cannot_load(demo_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(demo_bundle, bundle)
    model = bundle / "model-cpu-b8.pt"
    model.write_bytes(b"not a torchscript archive")
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["variants"][0]["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    code, _, log = refusal(bundle, tmp_path)
    assert code == 3
    assert f"{model}: variant cpu/b8 failed to load or warm up (RuntimeError: " in log
