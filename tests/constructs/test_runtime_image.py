"""The runtime image's dependency install, run as the Dockerfile runs it (no Docker here).

The base DLC's packages are constraints: pip may add what is missing but never upgrade what the
DLC ships (its numpy, torch, Neuron packages). Run offline against a local wheel folder with a
stand-in "numpy" at 1.0 in the "base" and 2.0 on the "index".
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from inf3kit.constructs.endpoint_image import RUNTIME_IMAGE_DIR


def _wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    records = []
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
            records.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
        archive.writestr(f"{info}/RECORD", "\n".join([*records, f"{info}/RECORD,,"]) + "\n")


def _install_step() -> str:
    """The Dockerfile's `RUN` that installs requirements.txt, as one shell command."""
    text = (RUNTIME_IMAGE_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    [run] = [line for line in text.splitlines() if "requirements.txt" in line and "RUN" in line]
    return re.sub(r"\s+", " ", run.removeprefix("RUN "))


@pytest.fixture
def base(tmp_path: Path) -> dict[str, str]:
    """A "base image": a venv with fakenumpy 1.0, an index with fakenumpy 2.0 and a package
    that needs it; returns the environment that points `python` and pip at them."""
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "fakenumpy", "1.0")
    _wheel(index, "fakenumpy", "2.0")
    _wheel(index, "needsnew", "1.0", ("fakenumpy>=2",))
    _wheel(index, "extra", "1.0", ("fakenumpy>=1",))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(index),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTHONPATH", None)
    subprocess.run(["python", "-m", "pip", "install", "-q", "fakenumpy==1.0"], env=env, check=True)
    (tmp_path / "opt").mkdir()
    return env


def _run(step: str, tmp_path: Path, env: dict[str, str], requirements: str) -> int:
    (tmp_path / "opt" / "requirements.txt").write_text(requirements)
    command = step.replace("/opt/inf3kit", str(tmp_path / "opt"))
    return subprocess.run(["bash", "-c", command], env=env, capture_output=True).returncode


def _version(env: dict[str, str]) -> str:
    done = subprocess.run(
        ["python", "-c", "import fakenumpy; print(fakenumpy.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_image_adds_packages_without_touching_the_base(
    base: dict[str, str], tmp_path: Path
) -> None:
    assert _run(_install_step(), tmp_path, base, "extra\n") == 0
    assert _version(base) == "1.0"
    assert (tmp_path / "opt" / "base-constraints.txt").read_text().count("fakenumpy==1.0") == 1


def test_fails_when_a_requirement_would_upgrade_the_base(
    base: dict[str, str], tmp_path: Path
) -> None:
    """Without the constraints pip would replace the base's fakenumpy 1.0 with 2.0 (as it did
    the DLC's numpy); with them the build stops instead."""
    assert _run(_install_step(), tmp_path, base, "needsnew\n") != 0
    assert _version(base) == "1.0"
    plain = "python -m pip install -q -r /opt/inf3kit/requirements.txt"
    assert _run(plain, tmp_path, base, "needsnew\n") == 0
    assert _version(base) == "2.0"
