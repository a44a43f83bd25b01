"""The runtime wheel synthesis ships: built from this package, installable, cached by content."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel pip-installed into a clean venv, as a fleet instance or a pipeline's build
    step installs it: (the wheel, the venv's python)."""
    tmp = tmp_path_factory.mktemp("installed")
    wheel = runtime_wheel(tmp / "cache")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies (numpy, uvicorn, aws_cdk, ...) come from this environment, read after the
    # new venv's own packages; .pth files there (the editable install) are not processed.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True)
    return wheel, python


def _run(python: Path, code: str, cwd: Path) -> str:
    """`code` in the venv, importing inf3kit from its install (not this checkout's PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, cwd=cwd, env=env
    )
    return done.stdout.strip()


def test_the_wheel_installs_and_serves_from_a_clean_venv(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    """What a fleet instance does with it: pip install, then import the runtime."""
    _, python = installed
    found = _run(python, "import inf3kit.runtime.app as a; print(a.__file__)", tmp_path)
    assert found.startswith(str(python.parents[1]))


def test_an_installed_wheel_rebuilds_the_same_bytes(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    """A pipeline's synth step installs the wheel, then synthesizes with it: the wheel it ships
    must be the same file, or every run would publish a new asset and mutate the pipeline
    (and roll every fleet) again."""
    wheel, python = installed
    code = (
        "import sys, pathlib, inf3kit; from inf3kit.constructs.runtime_wheel import runtime_wheel;"
        "print(inf3kit.__file__); print(runtime_wheel(pathlib.Path(sys.argv[1])))"
    )
    module, rebuilt = _run(
        python, code.replace("sys.argv[1]", repr(str(tmp_path))), tmp_path
    ).split("\n")
    assert module.startswith(str(python.parents[1]))  # repacked from the install, not built
    assert Path(rebuilt).name == wheel.name
    assert Path(rebuilt).read_bytes() == wheel.read_bytes()
