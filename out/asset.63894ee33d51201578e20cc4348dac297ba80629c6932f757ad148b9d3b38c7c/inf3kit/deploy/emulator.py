"""LocalAws: a local AWS API (moto server) as a managed child process.

The deploy path talks to it exactly as to AWS, through real clients, with test credentials that
exist only in the environment of the processes inf3kit starts: the user's ~/.aws is never read
or written, because the config and credentials file variables point into the state folder.
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
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.session

ACCOUNT = "123456789012"
"""The account id moto answers with; stacks deployed locally live in it."""
REGION = "us-east-1"
STATE_DIR = Path(".inf3kit") / "local"


class LocalAwsError(RuntimeError):
    """The emulator could not start or be reached; the message says what to do."""


@dataclass(frozen=True)
class LocalAws:
    """A running emulator: where it listens and how to talk to it."""

    port: int
    pid: int
    state_dir: Path

    @property
    def endpoint(self) -> str:
        # `localhost`, not 127.0.0.1: moto parses path-style S3 template URLs only for it.
        return f"http://localhost:{self.port}"

    def env(self, region: str = REGION) -> dict[str, str]:
        """Environment for child processes (the CDK CLI, the demo runtime) to use the emulator."""
        empty = self.state_dir / "aws-config-empty"
        empty.touch()
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_CONFIG_FILE": str(empty),
            "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_EC2_METADATA_DISABLED": "true",
            "CDK_DEFAULT_ACCOUNT": ACCOUNT,
            "CDK_DEFAULT_REGION": region,
        }

    def session(self, region: str = REGION) -> boto3.Session:
        """A boto3 session bound to the emulator that ignores every AWS config file."""
        empty = str(self.state_dir / "aws-config-empty")
        core = botocore.session.Session()
        core.set_config_variable("config_file", empty)
        core.set_config_variable("credentials_file", empty)
        return boto3.Session(
            botocore_session=core,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            region_name=region,
        )

    def client(self, service: str, region: str = REGION):
        return self.session(region).client(service, endpoint_url=self.endpoint)

    @property
    def log_file(self) -> Path:
        return self.state_dir / "moto.log"


def _state_file(state_dir: Path) -> Path:
    return state_dir / "emulator.json"


def _healthy(port: int, timeout: float = 5.0) -> bool:
    """A real, cheap API call (STS GetCallerIdentity), whatever the emulator holds."""
    request = urllib.request.Request(
        f"http://localhost:{port}/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running(state_dir: Path = STATE_DIR) -> LocalAws | None:
    """The emulator recorded in `state_dir`, if it is still alive and answering."""
    state = _state_file(state_dir)
    if not state.exists():
        return None
    data = json.loads(state.read_text())
    if _pid_alive(data["pid"]) and _healthy(data["port"]):
        return LocalAws(port=data["port"], pid=data["pid"], state_dir=state_dir)
    state.unlink()
    return None


def start(
    port: int | None = None, state_dir: Path = STATE_DIR, timeout: float = 30.0
) -> tuple[LocalAws, bool]:
    """Reuse the running emulator or start one; returns it and whether it was started now."""
    state_dir.mkdir(parents=True, exist_ok=True)
    current = running(state_dir)
    if current and port in (None, current.port):
        return current, False
    if current:
        raise LocalAwsError(
            f"a local AWS emulator already runs on port {current.port}, not {port}. "
            f"Fix: drop --port to reuse it, or stop it first with `inf3kit local stop`"
        )
    if port is not None and _port_in_use(port):
        raise LocalAwsError(
            f"port {port} is already in use by another program. "
            "Fix: pass a free port with --port, or omit --port to pick one automatically"
        )
    port = port or _free_port()
    log_file = (state_dir / "moto.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "inf3kit.deploy", "--port", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    aws = LocalAws(port=port, pid=proc.pid, state_dir=state_dir)
    deadline = time.monotonic() + timeout
    while not _healthy(port, timeout=1.0):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(aws)
            raise LocalAwsError(
                f"the local AWS emulator did not start on port {port} within {timeout:.0f} s. "
                f"See its log: {aws.log_file}. Fix: check that moto[server] is installed "
                "(pip install 'inf3kit[local]')"
            )
        time.sleep(0.2)
    _state_file(state_dir).write_text(json.dumps({"port": port, "pid": proc.pid}))
    return aws, True


def stop(aws: LocalAws, timeout: float = 10.0) -> None:
    """Stop the emulator and forget it; its state (everything deployed) is gone with it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(aws.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(aws.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(aws.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(aws.pid, os.WNOHANG)
    _state_file(aws.state_dir).unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
