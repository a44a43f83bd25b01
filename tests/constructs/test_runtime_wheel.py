"""The runtime wheel synthesis ships: built from this package, installable, cached by content."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import inf3kit
from inf3kit import __version__
from inf3kit.constructs.runtime_wheel import runtime_wheel


def _build_outputs(root: Path) -> dict[Path, int]:
    """What setuptools writes where it builds: egg-info and build/lib, with their times."""
    found = [*root.glob("*.egg-info"), root / "build" / "lib"]
    return {p: p.stat().st_mtime_ns for p in found if p.exists()}


def test_the_wheel_is_this_version_with_the_runtime_and_its_data(tmp_path: Path) -> None:
    source = Path(inf3kit.__file__).parents[1]
    before = _build_outputs(source)
    wheel = runtime_wheel(tmp_path)
    assert wheel.name == f"inf3kit-{__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"inf3kit/runtime/app.py", "inf3kit/catalog/data/instances.yaml"} <= names
    assert f"inf3kit-{__version__}.dist-info/METADATA" in names
    assert runtime_wheel(tmp_path) == wheel  # the second synthesis reuses it
    # Built from a copy: a fresh egg-info beside the source would shadow the installed metadata.
    assert _build_outputs(source) == before


def test_the_wheel_installs_and_serves_from_a_clean_venv(tmp_path: Path) -> None:
    """What a fleet instance does with it: pip install, then import the runtime."""
    wheel = runtime_wheel(tmp_path / "cache")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # The dependencies (numpy, uvicorn, ...) come from this environment, read after the new
    # venv's own packages; .pth files there (the editable install) are not processed.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True)
    found = subprocess.run(
        [python, "-c", "import inf3kit.runtime.app as a; print(a.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert found.stdout.strip().startswith(str(venv))
