"""A plan as JSON and as a rich table, every estimated or provisional figure labelled."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table
from rich.text import Text

from inf3kit.plan.planner import Plan, Row
from inf3kit.plan.profile import Profile

PLAN_FORMAT = 1


def row_dict(row: Row) -> dict[str, Any]:
    return {
        "instance_type": row.instance_type,
        "platform": row.platform,
        "family": row.family,
        "provisional": row.provisional,
        "labels": list(row.labels),
        "basis": {
            "kind": row.basis.kind,
            "label": row.basis.label(),
            "profile_target": row.basis.profile_target,
            "cpu_measured": row.basis.cpu_measured,
            "throughput_factor": round(row.basis.factor, 6),
            "ratio_sources": list(row.basis.sources),
        },
        "batch_size": row.batch_size,
        "concurrency": row.concurrency,
        "replica_samples_per_s": round(row.replica_rps, 2),
        "replicas_per_instance": row.replicas_per_instance,
        "knee_rps_per_instance": round(row.knee_rps_per_instance, 2),
        "target_rps_per_instance": round(row.target_rps_per_instance, 2),
        "scaling_target_per_minute": row.scaling_target_per_minute,
        "instances_for_load": row.instances_for_load,
        "instances": row.instances,
        "p99_ms": round(row.p99_ms, 3),
        "latency_ok": row.latency_ok,
        "price": {
            "usd_per_hour": row.price.usd_per_hour,
            "spot_usd_per_hour": row.price.spot_usd_per_hour,
            "region": row.price.region,
            "source": row.price.source,
            "as_of": row.price.as_of,
            "provisional": row.price.provisional,
        },
        "monthly_usd_on_demand": _round(row.monthly_on_demand, 2),
        "monthly_usd_with_spot": _round(row.monthly_with_spot, 2),
        "usd_per_million": _round(row.cost_per_million, 4),
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def plan_dict(plan: Plan) -> dict[str, Any]:
    load = plan.load
    return {
        "format_version": PLAN_FORMAT,
        "load": {
            "rps": load.rps,
            "p99_ms": load.p99_ms,
            "region": load.region,
            "headroom": load.headroom,
            "spot_percent": load.spot_percent,
            "model_gib": load.model_gib,
        },
        "profiles": [
            {
                "target": p.target,
                "device": p.device,
                "how": p.how,
                "when": p.when,
                "cpu_measured": p.target == "cpu",
            }
            for p in plan.profiles
        ],
        "rows": [row_dict(r) for r in plan.rows],
        "excluded": [{"instance_type": e.instance_type, "reason": e.reason} for e in plan.excluded],
    }


def plan_json(plan: Plan) -> str:
    return json.dumps(plan_dict(plan), indent=2) + "\n"


def compact(value: int) -> str:
    """12,345 stays; 1,234,567 -> 1.23M: a table cell, JSON has the exact figure."""
    if value < 100_000:
        return f"{value:,}"
    if value < 1_000_000:
        return f"{value / 1e3:.3g}k"
    return f"{value / 1e6:.3g}M"


def money(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"${value:,.{digits}f}"


def plan_table(plan: Plan) -> Table:
    load = plan.load
    table = Table(
        title=(
            f"inf3kit plan: {load.rps:g} req/s, p99 <= {load.p99_ms:g} ms, {load.region}, "
            f"headroom {load.headroom:.0%}, N+1"
        ),
        caption=(
            "sorted by $ per million inferences, rows missing the p99 target last; basis: "
            "measured, scaled or provisional, from the named profile, x throughput factor"
        ),
    )
    table.add_column("type", overflow="fold")
    table.add_column("basis", overflow="fold")
    for name in ("batch", "replicas", "target/min", "instances", "p99 ms", "$/h", "$/month"):
        table.add_column(name, justify="right")
    if load.spot_percent:
        table.add_column(f"$/month {load.spot_percent}% Spot", justify="right")
    table.add_column("$/1M", justify="right")
    table.add_column("notes")
    for row in plan.rows:
        if row.price.missing:
            continue  # listed by unpriced_line(): a row without a price compares nothing
        basis = Text(short_basis(row), style="yellow" if row.provisional else "")
        p99 = Text(f"{row.p99_ms:.3g}", style="" if row.latency_ok else "red")
        cells: list[str | Text] = [
            row.instance_type,
            basis,
            str(row.batch_size),
            str(row.replicas_per_instance),
            compact(row.scaling_target_per_minute),
            str(row.instances),
            p99,
            money(row.price.usd_per_hour, 4),
            money(row.monthly_on_demand),
        ]
        if load.spot_percent:
            cells.append(money(row.monthly_with_spot))
        cells += [money(row.cost_per_million, 4), Text(short_notes(row), style="dim")]
        table.add_row(*cells)
    return table


def short_basis(row: Row) -> str:
    basis = row.basis
    text = basis.kind if basis.kind == "measured" else f"{basis.kind} x{basis.factor:.3g}"
    return f"{text} {basis.profile_target}"


def short_notes(row: Row) -> str:
    """The row's labels, shortened for a table cell (JSON and HTML carry them in full)."""
    notes = ["PROVISIONAL"] if row.provisional else []
    for label in row.labels:
        if label.startswith("needs"):
            notes.append(f"compile {row.family}")
        elif label in ("price missing", "no Spot price", "GPU baseline"):
            notes.append(label)
    if not row.latency_ok:
        notes.append("misses p99")
    return ", ".join(notes)


def unpriced_line(plan: Plan) -> str | None:
    names = [r.instance_type for r in plan.rows if r.price.missing]
    if not names:
        return None
    return (
        f"no {plan.load.region} price recorded for {', '.join(names)} (in --json and --html "
        f"without cost). Fix: `inf3kit catalog prices --refresh --region {plan.load.region}`"
    )


def excluded_lines(plan: Plan) -> list[str]:
    return [f"{e.instance_type}: {e.reason}" for e in plan.excluded]


def profile_lines(plan: Plan) -> list[str]:
    lines = []
    for p in plan.profiles:
        cpu = " (CPU-measured: a CPU core stands in for one Inferentia2 NeuronCore)"
        lines.append(
            f"profile {p.target}: {p.device}, {p.how}, {p.when}"
            + (cpu if p.target == "cpu" else "")
        )
    return lines


def source_lines(plan: Plan) -> list[str]:
    """Each distinct ratio and price source once, so every scaled figure can be traced."""
    seen: dict[str, None] = {}
    for row in plan.rows:
        for source in row.basis.sources:
            seen.setdefault(f"ratio {source}", None)
    for row in plan.rows:
        if row.price.usd_per_hour is not None:
            seen.setdefault(f"price {row.price.source} ({row.price.as_of})", None)
    return list(seen)


def profile_table(profile: Profile) -> Table:
    table = Table(
        title=f"profile {profile.model} {profile.model_version} on {profile.target}: "
        f"{profile.device}, {profile.how}"
    )
    for name in ("batch", "concurrency", "samples/s", "p50 ms", "p99 ms", ""):
        table.add_column(name, justify="right")
    knees = {profile.knee(b) for b in profile.batch_sizes}
    for p in profile.points:
        table.add_row(
            str(p.batch_size),
            str(p.concurrency),
            f"{p.samples_per_s:,.0f}",
            f"{p.p50_ms:.3g}",
            f"{p.p99_ms:.3g}",
            "knee" if p in knees else "",
        )
    return table
