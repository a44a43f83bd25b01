"""Run every check against each region the spec deploys to and collect one report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from inf3kit.preflight import (
    bootstrap,
    bundle,
    endpoint_update,
    images,
    offerings,
    quotas,
    weights,
)
from inf3kit.preflight.report import Context, Report
from inf3kit.spec import LoadedSpec, Spec

Check = Callable[[Context], None]
REGIONAL: tuple[tuple[str, Check], ...] = (
    (offerings.CHECK, offerings.check),
    (quotas.CHECK, quotas.check),
    ("ami and image", images.check),
    (bootstrap.CHECK, bootstrap.check),
    (endpoint_update.CHECK, endpoint_update.check),
)
ONCE: tuple[tuple[str, Check], ...] = (
    (bundle.CHECK, bundle.check),
    (weights.CHECK, weights.check),
)


class PreflightError(ValueError):
    """Preflight cannot start (no region to check); the message says how to give one."""


def stack_names(spec: Spec) -> list[tuple[str, str | None]]:
    """(stack name, region) per stack the spec deploys: the stack name names the endpoint."""
    if not spec.environments:
        return [(spec.name, None)]
    return [(f"{spec.name}-{stage}", env.region) for stage, env in spec.environments.items()]


def run(
    loaded: LoadedSpec,
    session: Any,
    region: str | None = None,
    *,
    endpoint_url: str | None = None,
    assembly_dir: Path | None = None,
) -> Report:
    """Check every region the spec deploys to (`region` overrides them all).

    Every problem is collected, none stops the others. A check the account does not let us
    run (no credentials, access denied, an API the region or emulator lacks) is reported as
    not checked, with the reason.
    """
    by_region: dict[str, list[str]] = {}
    for name, stage_region in stack_names(loaded.spec):
        where = region or stage_region or session.region_name
        if where is None:
            raise PreflightError(
                f"no region to check for stack {name}. Fix: pass --region, set "
                "AWS_DEFAULT_REGION, or give the spec's environments a region"
            )
        by_region.setdefault(where, []).append(name)
    report = Report()
    for i, (where, names) in enumerate(by_region.items()):
        ctx = Context(loaded, session, where, report, names, endpoint_url, assembly_dir)
        for name, check in REGIONAL + (ONCE if i == 0 else ()):
            _guarded(ctx, name, check)
    return report


def _guarded(ctx: Context, name: str, check: Check) -> None:
    try:
        check(ctx)
    except (BotoCoreError, ClientError) as exc:
        ctx.unchecked(name, f"cannot read the account: {exc}")
