"""Package layout pitfalls: CDK's `constructs` must not be shadowed, and Node must be 24."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_in_repo(code: str) -> subprocess.CompletedProcess[str]:
    """Run like `python3 app.py` does: the repo root first on sys.path."""
    return subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, '.'); {code}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )


def test_constructs_resolves_to_the_installed_cdk_dependency() -> None:
    out = run_in_repo("import constructs; print(constructs.__file__)").stdout.strip()
    assert "site-packages" in out and not out.startswith(str(REPO / "constructs"))


def test_importing_the_cdk_layer_uses_node_24_without_a_warning_box() -> None:
    proc = run_in_repo(
        "import inf3kit.stacks, os, subprocess; "
        "print(subprocess.run([os.environ['JSII_NODE'], '--version'], capture_output=True, "
        "text=True).stdout)"
    )
    assert proc.stdout.startswith("v24.")
    assert "end-of-life" not in proc.stderr and "!!!!" not in proc.stderr
