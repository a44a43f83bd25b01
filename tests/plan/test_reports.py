"""The plan as people read it: the table, JSON and the HTML report (parsed, charts and table)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from rich.console import Console

from inf3kit.catalog import Catalog
from inf3kit.plan.html import monthly_cost, plan_html
from inf3kit.plan.planner import Load, Plan, build_plan
from inf3kit.plan.report import plan_dict, plan_json, plan_table
from tests.plan.conftest import make_profile


def a_plan(catalog: Catalog) -> Plan:
    return build_plan(
        catalog, [make_profile()], Load(rps=1000, p99_ms=10), platforms=["ec2", "sagemaker"]
    )


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, of one HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]


def test_json_labels_provisional_and_cpu_measured_figures(catalog: Catalog) -> None:
    data = json.loads(plan_json(a_plan(catalog)))
    rows = {r["instance_type"]: r for r in data["rows"]}
    inf3 = rows["inf3.xlarge"]
    assert inf3["provisional"] is True
    assert inf3["basis"]["kind"] == "provisional"
    assert {"provisional hardware", "provisional ratio", "provisional price"} <= set(inf3["labels"])
    inf2 = rows["inf2.xlarge"]
    assert inf2["provisional"] is False and inf2["basis"]["cpu_measured"] is True
    assert (inf2["instances"], inf2["monthly_usd_on_demand"]) == (3, 1095.0)
    assert inf2["usd_per_million"] == 0.4167
    assert inf2["price"]["source"] and inf2["price"]["as_of"]
    assert data["profiles"][0]["cpu_measured"] is True
    assert {e["instance_type"] for e in data["excluded"]} >= {"trn2.48xlarge", "g6.xlarge"}


def test_table_marks_provisional_rows(catalog: Catalog) -> None:
    console = Console(width=250, record=True)
    console.print(plan_table(a_plan(catalog)))
    text = console.export_text()
    inf3_line = next(line for line in text.splitlines() if "│ inf3.xlarge " in line)
    assert "PROVISIONAL" in inf3_line and "provisional x4 cpu" in inf3_line
    inf2_line = next(line for line in text.splitlines() if "│ inf2.xlarge " in line)
    assert "PROVISIONAL" not in inf2_line and "$1,095" in inf2_line and "$0.4167" in inf2_line


def test_html_report_has_both_charts_and_the_table(catalog: Catalog) -> None:
    plan = a_plan(catalog)
    page = Elements()
    page.feed(plan_html(plan, "inf3kit plan: demo"))
    priced = [r for r in plan.rows if r.cost_per_million is not None]
    assert len(page.find("svg", id="cost-vs-p99")) == 1
    points = [a for t, a in page.tags if a.get("class") == "point"]
    assert {p["data-type"] for p in points} == {r.instance_type for r in priced}
    assert len(page.find("line", class_="p99-target")) == 1
    assert len(page.find("svg", id="cost-vs-load")) == 1
    lines = page.find("polyline", class_="line")
    assert 1 <= len(lines) <= 6
    assert len(page.find("table", id="plan-table")) == 1
    assert len(page.find("tr", class_="provisional")) == sum(r.provisional for r in plan.rows)
    assert len(page.find("tr", class_="ga")) == sum(not r.provisional for r in plan.rows)
    text = "".join(page.text)
    assert "inf3.xlarge (provisional)" in text
    assert "CPU-measured" in text
    assert not page.find("script")  # opens from disk, no server and nothing to run


def test_monthly_cost_line_steps_one_instance_at_a_time(catalog: Catalog) -> None:
    """inf2.xlarge target 640/s at $0.5/h: 640/s -> 1 + 1 instances, 641/s -> 2 + 1."""
    row = next(r for r in a_plan(catalog).rows if r.instance_type == "inf2.xlarge")
    assert monthly_cost(row, 640) == 2 * 0.5 * 730
    assert monthly_cost(row, 641) == 3 * 0.5 * 730


def test_plan_dict_records_the_load(catalog: Catalog) -> None:
    load = plan_dict(a_plan(catalog))["load"]
    assert load == {
        "rps": 1000,
        "p99_ms": 10,
        "region": "us-east-1",
        "headroom": 0.2,
        "spot_percent": 0,
        "model_gib": None,
    }
