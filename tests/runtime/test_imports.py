"""The runtime must import in a `pip install inf3kit[serve]` container: no CDK, no eager torch."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

FORBIDDEN = (
    "aws_cdk", "constructs", "inf3kit.stacks", "inf3kit.constructs", "inf3kit.spec",
    "inf3kit.cli", "torch", "tritonclient",
)  # fmt: skip


def test_runtime_imports_nothing_it_must_not() -> None:
    code = (
        "import sys\n"
        "import inf3kit.runtime, inf3kit.runtime.server, inf3kit.runtime.commands\n"
        "import inf3kit.runtime.supervisor, inf3kit.runtime.grpc_service\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
