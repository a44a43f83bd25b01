"""Plain functions behind ``inf3kit compile``, ``inf3kit bundle`` and ``inf3kit serve``.

The CLI module only parses flags and calls these, so they are testable without typer and
usable from scripts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inf3kit.runtime.manifest import Manifest, Variant


def compile_bundle(
    factory: str,
    inputs: Sequence[str],
    out: Path,
    *,
    target: str = "cpu",
    batch_size: int = 1,
    name: str | None = None,
    version: str | None = None,
    outputs: Sequence[str] = (),
    compiler_args: Sequence[str] = (),
    cores_per_replica: int = 1,
    dims: Sequence[str] = (),
    pads: Sequence[str] = (),
) -> tuple[Manifest, Variant]:
    """Trace ``factory`` (``module:function``) for ``target`` into the bundle at ``out``.

    ``dims`` (``seq=16,32,64``) give the bucket values of named input dimensions and ``pads``
    (``mask=0``) the value that pads each such input.
    """
    from inf3kit.runtime.compile import (
        compile_model,
        parse_dim_arg,
        parse_pad_arg,
        parse_tensor_arg,
    )

    return compile_model(
        factory,
        [parse_tensor_arg(i) for i in inputs],
        out,
        target=target,
        batch_size=batch_size,
        name=name,
        version=version,
        output_names=outputs,
        compiler_args=compiler_args,
        cores_per_replica=cores_per_replica,
        dims=dict(parse_dim_arg(d) for d in dims),
        pads=dict(parse_pad_arg(p) for p in pads),
    )


def pack(bundle_dir: Path, out: Path) -> Manifest:
    """Verify ``bundle_dir`` and write a reproducible ``model.tar.gz``."""
    from inf3kit.runtime.bundle import pack_bundle

    return pack_bundle(bundle_dir, out)


def serve(**overrides: Any) -> int:
    """Serve the bundle named by INF3KIT_MODEL_DIR (or ``model_dir=``); return the exit code.

    ``overrides`` are CLI flags (``None`` means "not given") applied over INF3KIT_* variables.
    """
    from inf3kit.runtime.settings import LOG_LEVELS, load_settings

    settings = load_settings(**overrides)
    if settings.log_level == "trace":
        logging.addLevelName(LOG_LEVELS["trace"], "TRACE")  # 5, below debug; unknown to logging
    logging.basicConfig(
        level=LOG_LEVELS[settings.log_level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.neuron_cores and "NEURON_RT_VISIBLE_CORES" not in os.environ:
        # Claim exactly the cores we were given before the Neuron runtime initialises.
        os.environ["NEURON_RT_VISIBLE_CORES"] = f"0-{settings.neuron_cores - 1}"
    from inf3kit.runtime.server import run

    return run(settings)
