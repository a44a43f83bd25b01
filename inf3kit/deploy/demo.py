"""The end-to-end demo: the deployed bundle, fetched back from the local AWS, served and called.

It proves the whole path on one machine: the archive the deploy uploaded is downloaded from the
emulator's S3, checked byte for byte against the local build, loaded by the real runtime (which
verifies every variant checksum) and answers a real inference request.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from inf3kit.deploy.emulator import LocalAws
from inf3kit.rules import split_s3_uri
from inf3kit.runtime.bundle import sha256_file


class DemoError(RuntimeError):
    """A demo step failed; the message names the step and what to look at."""


@dataclass(frozen=True)
class FetchedBundle:
    path: Path
    sha256: str


def fetch_bundle(
    aws: LocalAws, model_data_url: str, local_archive: Path, dest: Path
) -> FetchedBundle:
    """Download the deployed bundle and refuse it unless it is the archive that was built."""
    location = split_s3_uri(model_data_url)
    if location is None:
        raise DemoError(
            f"the stack's ModelDataUrl {model_data_url!r} is not an s3:// URI. "
            "Fix: redeploy the demo stack (`inf3kit demo`)"
        )
    bucket, key = location
    dest.parent.mkdir(parents=True, exist_ok=True)
    aws.client("s3").download_file(bucket, key, str(dest))
    fetched, built = sha256_file(dest), sha256_file(local_archive)
    if fetched != built:
        raise DemoError(
            f"the bundle in {model_data_url} (sha256 {fetched[:12]}...) is not the local build "
            f"{local_archive} (sha256 {built[:12]}...); rebuild with `make bundle` and redeploy"
        )
    return FetchedBundle(dest, fetched)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(bundle: Path, log_file: Path, timeout: float = 90.0) -> Iterator[str]:
    """Run `inf3kit serve` on the bundle until the block ends; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "INF3KIT_MODEL_DIR": str(bundle),
        "INF3KIT_PORT": str(port),
        "INF3KIT_HOST": "127.0.0.1",
    }
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inf3kit.runtime", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, proc, timeout, log_file)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float, log_file: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"the runtime exited with {proc.returncode}; see {log_file}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise DemoError(f"the runtime was not ready within {timeout:.0f} s; see {log_file}")


def invoke(url: str, instances: list[list[float]]) -> dict:
    """POST /invocations, the call SageMaker makes on the endpoint's container."""
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps({"instances": instances}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return dict(json.loads(resp.read()))
