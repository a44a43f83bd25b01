"""What `inf3kit profile`, `inf3kit plan` and `inf3kit catalog prices` do, behind thin CLI flags.

The CLI only parses flags and maps exceptions to exit codes; these functions do the work and
print through the console they are given, so they are testable without typer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from inf3kit.catalog import CATALOG_ENV, Catalog, CatalogError, load_catalog
from inf3kit.plan.for_spec import plan_for_spec
from inf3kit.plan.llm import LlmRow, llm_plan, llm_rows_json, llm_source_lines, llm_table
from inf3kit.plan.planner import Plan, Row
from inf3kit.plan.profile import profile_path, write_profile
from inf3kit.plan.report import (
    PLAN_FORMAT,
    excluded_lines,
    plan_json,
    plan_table,
    profile_lines,
    profile_table,
    source_lines,
    unpriced_line,
)
from inf3kit.spec import LoadedSpec


def run_profile(
    console: Console,
    bundle: Path,
    url: str | None,
    target: str | None,
    batch_sizes: Sequence[int] | None,
    concurrencies: Sequence[int] | None,
    seconds: float,
    out: Path | None,
) -> Path:
    from inf3kit.plan.measure import profile_http, profile_in_process

    if seconds <= 0:
        raise ValueError(f"--seconds must be > 0, got {seconds}")
    if url:
        if not target:
            raise ValueError(
                "--url needs --target: the family the server runs on (e.g. inf2, or g5 for a "
                "GPU baseline), which an HTTP endpoint cannot tell"
            )
        profile = profile_http(
            bundle, url, target=target, concurrencies=concurrencies, seconds=seconds
        )
    else:
        profile = profile_in_process(
            bundle,
            target=target,
            batch_sizes=batch_sizes,
            concurrencies=concurrencies,
            seconds=seconds,
        )
    path = write_profile(profile, out or profile_path(bundle, profile.target))
    console.print(profile_table(profile))
    console.print(f"profile written to {path}", highlight=False)
    return path


def _choices(plan: Plan, choose: Sequence[str]) -> dict[str, Row]:
    rows = {r.instance_type: r for r in plan.rows}
    chosen: dict[str, Row] = {}
    for name in choose:
        if name not in rows:
            excluded = {e.instance_type: e.reason for e in plan.excluded}
            why = excluded.get(name, "not a type of this spec's endpoint/fleet")
            raise ValueError(f"--choose {name}: not in the plan ({why})")
        chosen[rows[name].platform] = rows[name]
    for platform in {r.platform for r in plan.rows} - set(chosen):
        row = plan.cheapest(platform)
        if row is None:
            raise ValueError(
                f"no {platform} type meets the p99 target with a known, non-provisional price. "
                "Fix: relax --p99-ms, add prices, or pick one with --choose TYPE"
            )
        chosen[platform] = row
    return chosen


def run_plan(
    console: Console,
    loaded: LoadedSpec,
    spec_path: Path,
    *,
    rps: float,
    p99_ms: float,
    profiles: Sequence[Path],
    region: str,
    headroom: float,
    model_gib: float | None,
    as_json: bool,
    html: Path | None,
    apply: bool,
    choose: Sequence[str],
    peak: float,
) -> Plan:
    plan = plan_for_spec(
        loaded,
        rps=rps,
        p99_ms=p99_ms,
        profiles=profiles,
        region=region,
        headroom=headroom,
        model_gib=model_gib,
    )
    if as_json:
        console.print_json(plan_json(plan))
    else:
        for line in profile_lines(plan):
            console.print(line, highlight=False, markup=False)
        console.print(plan_table(plan))
        unpriced = unpriced_line(plan)
        if unpriced:
            console.print(Text(unpriced, style="yellow"), highlight=False)
        for line in excluded_lines(plan):
            console.print(Text.assemble(("excluded ", "yellow"), line), highlight=False)
        for line in source_lines(plan):
            console.print(Text(line, style="dim"), highlight=False)
    if html is not None:
        from inf3kit.plan.html import plan_html

        html.write_text(plan_html(plan, f"inf3kit plan: {loaded.spec.name}"))
        if not as_json:
            console.print(f"HTML report written to {html}", highlight=False)
    if apply:
        from inf3kit.plan.apply import apply_choices

        changes = apply_choices(spec_path, _choices(plan, choose), peak=peak)
        if not as_json:
            for change in changes or ["nothing to change"]:
                console.print(f"applied {change}", highlight=False, markup=False)
    return plan


def run_llm_plan(
    console: Console,
    loaded: LoadedSpec,
    *,
    profiles: Sequence[Path],
    region: str,
    as_json: bool,
) -> list[LlmRow]:
    """The plan of an LLM spec (`model.engine: vllm`): cost per million output tokens per type."""
    rows = llm_plan(loaded, profiles, region)
    if as_json:
        console.print_json(json.dumps({"format": PLAN_FORMAT, "llm": llm_rows_json(rows)}))
        return rows
    console.print(llm_table(rows))
    for line in llm_source_lines(rows):
        console.print(Text(line, style="dim"), highlight=False)
    return rows


def list_prices(catalog: Catalog, region: str) -> Table:
    table = Table(title=f"on-demand prices, {region} (USD per hour)")
    for name in ("type", "$/h", "Spot $/h", "as of", "source"):
        table.add_column(name, justify="right" if "$" in name else "left")
    for itype in catalog.types():
        price = catalog.price(itype.name, region)
        status = " (provisional)" if price.provisional else ""
        table.add_row(
            itype.name,
            "-" if price.usd_per_hour is None else f"{price.usd_per_hour:.4g}",
            "-" if price.spot_usd_per_hour is None else f"{price.spot_usd_per_hour:.4g}",
            price.as_of,
            Text(price.source + status, style="yellow" if price.missing else ""),
        )
    return table


def refresh_catalog_prices(
    console: Console, region: str, out: Path | None, catalog_file: Path | None
) -> dict[str, float | None]:
    import boto3

    from inf3kit.catalog.price_list import PRICING_API_REGION, refresh_prices

    target = out or (Path(os.environ[CATALOG_ENV]) if os.environ.get(CATALOG_ENV) else None)
    if target is None:
        raise CatalogError(
            f"no override file to update. Fix: pass --out FILE (then use it with "
            f"{CATALOG_ENV}=FILE or the spec key `catalog:`), or set {CATALOG_ENV}"
        )
    client = boto3.client("pricing", region_name=PRICING_API_REGION)
    found = refresh_prices(client, load_catalog(catalog_file), region, target)
    missing = sorted(name for name, price in found.items() if price is None)
    console.print(
        f"{len(found) - len(missing)} prices for {region} written to {target}", highlight=False
    )
    if missing:
        console.print(
            Text(f"not listed by AWS in {region}: {json.dumps(missing)}", style="yellow"),
            highlight=False,
        )
    return found
