"""Stacks that compose the constructs from a spec; `build_app()` is what app.py runs."""

from inf3kit._node import use_wheel_node

use_wheel_node()

from inf3kit.stacks.app import (  # noqa: E402
    DEFAULT_SPEC,
    SPEC_CONTEXT_KEY,
    SynthResult,
    add_service,
    build_app,
    synth,
)
from inf3kit.stacks.gates import Finding, GateResult, run_gates  # noqa: E402
from inf3kit.stacks.service import ServiceStack  # noqa: E402

__all__ = [
    "DEFAULT_SPEC",
    "SPEC_CONTEXT_KEY",
    "Finding",
    "GateResult",
    "ServiceStack",
    "SynthResult",
    "add_service",
    "build_app",
    "run_gates",
    "synth",
]
