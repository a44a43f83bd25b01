"""A self-contained HTML report of a plan: inline SVG charts and the table, no script, no server.

Two charts: cost per million against p99 per type (the trade-off), and monthly cost against
load for the cheapest types (where each one steps up an instance). Provisional rows are drawn
hollow and labelled "provisional" wherever they appear.
"""

from __future__ import annotations

import math
from html import escape

from inf3kit.catalog.prices import HOURS_PER_MONTH
from inf3kit.plan.planner import Plan, Row
from inf3kit.plan.report import excluded_lines, money, profile_lines, source_lines

W, H = 720, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 180, 20, 50
COLOURS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6b4c9a", "#00798c", "#8d6a9f", "#555")
MAX_LINES = 6

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th:first-child, td:first-child, td.notes, td.basis { text-align: left; }
tr.provisional td { background: #fff6e0; }
td.miss { color: #b00; }
.tag { font-size: 11px; background: #f0c36d; border-radius: 3px; padding: 0 4px; }
svg { background: #fff; border: 1px solid #ddd; margin: .5em 0 1.5em; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
"""


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for exp in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**exp
            if lo <= v <= hi:
                ticks.append(v)
    return ticks or [lo, hi]


def _lin_ticks(hi: float, n: int = 5) -> list[float]:
    raw = hi / n
    step = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(s * step for s in (1, 2, 5, 10) if s * step >= raw)
    return [i * step for i in range(int(hi / step) + 2) if i * step <= hi * 1.0001]


def _label(row: Row) -> str:
    return row.instance_type + (" (provisional)" if row.provisional else "")


def _frame(title: str, x_label: str, y_label: str, body: list[str], chart_id: str) -> str:
    return (
        f'<svg id="{chart_id}" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#333"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#333"/>'
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 12}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(16 {(TOP + H - BOTTOM) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>' + "".join(body) + "</svg>"
    )


def cost_vs_latency_svg(plan: Plan) -> str:
    """Cost per million (log scale) against p99 for every priced row."""
    rows = [r for r in plan.rows if r.cost_per_million is not None]
    if not rows:
        return "<p>No priced type: nothing to chart.</p>"
    costs = [r.cost_per_million or 0.0 for r in rows]
    y_lo, y_hi = min(costs) / 1.5, max(costs) * 1.5
    x_hi = max(max(r.p99_ms for r in rows), plan.load.p99_ms) * 1.15

    def sx(v: float) -> float:
        return LEFT + v / x_hi * (W - LEFT - RIGHT)

    def sy(v: float) -> float:
        span = math.log10(y_hi) - math.log10(y_lo)
        return H - BOTTOM - (math.log10(v) - math.log10(y_lo)) / span * (H - TOP - BOTTOM)

    body = []
    for t in _log_ticks(y_lo, y_hi):
        body.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
            f'stroke="#eee"/><text x="{LEFT - 4}" y="{sy(t) + 4:.1f}" text-anchor="end">'
            f"${t:g}</text>"
        )
    for t in _lin_ticks(x_hi):
        body.append(
            f'<text x="{sx(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{t:g}</text>'
        )
    target = sx(plan.load.p99_ms)
    body.append(
        f'<line class="p99-target" x1="{target:.1f}" x2="{target:.1f}" y1="{TOP}" '
        f'y2="{H - BOTTOM}" stroke="#b00" stroke-dasharray="4 3"/>'
        f'<text x="{target + 4:.1f}" y="{TOP + 12}" style="fill:#b00">p99 target</text>'
    )
    families = list(dict.fromkeys(r.family for r in rows))
    colour_of = {f: COLOURS[i % len(COLOURS)] for i, f in enumerate(families)}
    for row in rows:
        colour = colour_of[row.family]
        fill = "none" if row.provisional else colour
        x, y = sx(row.p99_ms), sy(row.cost_per_million or 0.0)
        tip = (
            f"<title>{escape(_label(row))}: {money(row.cost_per_million, 4)} per million, "
            f"p99 {row.p99_ms:.3g} ms</title>"
        )
        common = (
            f'class="point" data-type="{escape(row.instance_type)}" fill="{fill}" '
            f'stroke="{colour}" stroke-width="2"'
        )
        if row.platform == "sagemaker":
            body.append(f'<rect {common} x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10">')
            body.append(tip + "</rect>")
        else:
            body.append(f'<circle {common} cx="{x:.1f}" cy="{y:.1f}" r="5">{tip}</circle>')
    for i, family in enumerate(families):
        provisional = any(r.provisional for r in rows if r.family == family)
        name = family + (" (provisional)" if provisional else "")
        body.append(
            f'<text x="{W - RIGHT + 8}" y="{TOP + 14 + 16 * i}" style="fill:{colour_of[family]}">'
            f"&#9679; {escape(name)}</text>"
        )
    body.append(
        f'<text x="{W - RIGHT + 8}" y="{TOP + 30 + 16 * len(families)}">'
        "&#9679; EC2  &#9632; SageMaker</text>"
    )
    return _frame(
        "Cost per million inferences vs p99 latency",
        "p99 latency at the operating point (ms)",
        "$ per million inferences (log)",
        body,
        "cost-vs-p99",
    )


def monthly_cost(row: Row, rps: float) -> float:
    """Monthly on-demand cost of serving `rps` on `row`'s type: ceil(rps / target) + 1."""
    instances = max(1, math.ceil(rps / row.target_rps_per_instance)) + 1
    return instances * (row.price.usd_per_hour or 0.0) * HOURS_PER_MONTH


def cost_vs_load_svg(plan: Plan) -> str:
    """Monthly on-demand cost against load (0..2x the planned load) for the cheapest types."""
    rows = [r for r in plan.rows if r.cost_per_million is not None and r.latency_ok][:MAX_LINES]
    if not rows:
        return "<p>No priced type meets the latency target: nothing to chart.</p>"
    x_hi = plan.load.rps * 2
    loads = [x_hi * i / 60 for i in range(61)]
    y_hi = max(monthly_cost(r, x_hi) for r in rows) * 1.1

    def sx(v: float) -> float:
        return LEFT + v / x_hi * (W - LEFT - RIGHT)

    def sy(v: float) -> float:
        return H - BOTTOM - v / y_hi * (H - TOP - BOTTOM)

    body = []
    for t in _lin_ticks(y_hi):
        body.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
            f'stroke="#eee"/><text x="{LEFT - 4}" y="{sy(t) + 4:.1f}" text-anchor="end">'
            f"${t:,.0f}</text>"
        )
    for t in _lin_ticks(x_hi):
        body.append(
            f'<text x="{sx(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{t:,.0f}</text>'
        )
    planned = sx(plan.load.rps)
    body.append(
        f'<line x1="{planned:.1f}" x2="{planned:.1f}" y1="{TOP}" y2="{H - BOTTOM}" '
        f'stroke="#999" stroke-dasharray="4 3"/>'
        f'<text x="{planned + 4:.1f}" y="{TOP + 12}">planned load</text>'
    )
    for i, row in enumerate(rows):
        colour = COLOURS[i % len(COLOURS)]
        dash = ' stroke-dasharray="6 3"' if row.provisional else ""
        path = " ".join(f"{sx(v):.1f},{sy(monthly_cost(row, v)):.1f}" for v in loads)
        body.append(
            f'<polyline class="line" data-type="{escape(row.instance_type)}" fill="none" '
            f'stroke="{colour}" stroke-width="2"{dash} points="{path}"/>'
            f'<text x="{W - RIGHT + 8}" y="{TOP + 14 + 16 * i}" style="fill:{colour}">'
            f"{escape(_label(row))}</text>"
        )
    return _frame(
        "Monthly on-demand cost vs load",
        "load (requests per second)",
        "$ per month",
        body,
        "cost-vs-load",
    )


def _table(plan: Plan) -> str:
    head = (
        "<tr><th>type</th><th>basis</th><th>batch</th><th>replicas</th><th>target/min</th>"
        "<th>instances</th><th>p99 ms</th><th>$/h</th><th>$/month</th><th>$/1M</th>"
        "<th>notes</th></tr>"
    )
    body = []
    for row in plan.rows:
        tag = ' <span class="tag">provisional</span>' if row.provisional else ""
        notes = list(row.labels) + ([] if row.latency_ok else ["misses p99 target"])
        body.append(
            f'<tr class="{"provisional" if row.provisional else "ga"}">'
            f"<td>{escape(row.instance_type)}{tag}</td>"
            f'<td class="basis">{escape(row.basis.label())}</td>'
            f"<td>{row.batch_size}</td><td>{row.replicas_per_instance}</td>"
            f"<td>{row.scaling_target_per_minute:,}</td><td>{row.instances}</td>"
            f'<td class="{"ok" if row.latency_ok else "miss"}">{row.p99_ms:.3g}</td>'
            f"<td>{money(row.price.usd_per_hour, 4)}</td><td>{money(row.monthly_on_demand)}</td>"
            f"<td>{money(row.cost_per_million, 4)}</td>"
            f'<td class="notes">{escape(", ".join(notes))}</td></tr>'
        )
    return f'<table id="plan-table">{head}{"".join(body)}</table>'


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def plan_html(plan: Plan, title: str) -> str:
    load = plan.load
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>{load.rps:g} requests/s, p99 &le; {load.p99_ms:g} ms, {escape(load.region)}, "
        f"headroom {load.headroom:.0%}, N+1 instances. Hollow points and dashed lines are "
        "<strong>provisional</strong> (no published specification).</p>"
        + _list(profile_lines(plan))
        + "<h2>Cost per million inferences vs p99 latency</h2>"
        + cost_vs_latency_svg(plan)
        + "<h2>Monthly on-demand cost vs load (cheapest types meeting the p99 target)</h2>"
        + cost_vs_load_svg(plan)
        + "<h2>Plan</h2>"
        + _table(plan)
        + "<h2>Excluded</h2>"
        + _list(excluded_lines(plan))
        + "<h2>Sources</h2>"
        + _list(source_lines(plan))
        + "</body></html>\n"
    )
