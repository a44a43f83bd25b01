"""Refresh catalog prices from the AWS Price List API into a catalog override file.

The Price List API (boto3 `pricing`) answers only in a few regions, whatever region is priced,
so the client is created in us-east-1. EC2 products are filtered to Linux, shared tenancy, no
pre-installed software, used capacity (the on-demand price people pay); SageMaker products to
the `Hosting` component (real-time endpoints).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inf3kit.catalog.hardware import SAGEMAKER_PREFIX, Catalog, CatalogError, read_yaml_mapping

PRICING_API_REGION = "us-east-1"
SOURCE = "AWS Price List API (pricing:GetProducts, {service}, on-demand)"

_EC2_FILTERS = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
}


def _filters(instance_type: str, region: str) -> tuple[str, list[dict[str, str]]]:
    if instance_type.startswith(SAGEMAKER_PREFIX):
        service = "AmazonSageMaker"
        wanted = {"regionCode": region, "component": "Hosting", "instanceName": instance_type}
    else:
        service = "AmazonEC2"
        wanted = {"regionCode": region, "instanceType": instance_type, **_EC2_FILTERS}
    return service, [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in wanted.items()]


def _hourly_usd(product: dict[str, Any]) -> float | None:
    """The on-demand USD per hour in one GetProducts price-list document, if it has one."""
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if dimension.get("unit") in ("Hrs", "Hours") and usd and float(usd) > 0:
                return float(usd)
    return None


def fetch_price(client: Any, instance_type: str, region: str) -> float | None:
    """The on-demand hourly price of one type in one region, or None if AWS lists none."""
    service, filters = _filters(instance_type, region)
    paginator = client.get_paginator("get_products")
    prices = set()
    for page in paginator.paginate(ServiceCode=service, Filters=filters, FormatVersion="aws_v1"):
        for document in page.get("PriceList", []):
            price = _hourly_usd(json.loads(document))
            if price is not None:
                prices.add(price)
    if len(prices) > 1:
        raise CatalogError(
            f"the Price List API returned {len(prices)} different on-demand prices for "
            f"{instance_type} in {region} ({', '.join(map(str, sorted(prices)))}); "
            "the filters no longer select one product. Fix: report this, and set the price "
            "by hand under `prices:` in a catalog override file"
        )
    return prices.pop() if prices else None


def refresh_prices(
    client: Any,
    catalog: Catalog,
    region: str,
    out: Path,
    *,
    types: Iterable[str] | None = None,
    today: dt.date | None = None,
) -> dict[str, float | None]:
    """Fetch every catalog type's price in `region` and merge them into the override file `out`.

    The rest of `out` (other regions, families, compatibility) is kept. Types AWS does not
    list in that region (provisional families, or not offered there) are reported as None and
    not written, so a shipped or hand-set figure is never replaced by nothing.
    """
    day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    names = list(types) if types is not None else [t.name for t in catalog.types()]
    found = {name: fetch_price(client, name, region) for name in names}
    existing = read_yaml_mapping(out) if out.exists() else {}
    regions = existing.setdefault("prices", {}) or {}
    existing["prices"] = regions
    entries = regions.setdefault(region, {}) or {}
    regions[region] = entries
    for name, price in found.items():
        if price is None:
            continue
        service = "AmazonSageMaker" if name.startswith(SAGEMAKER_PREFIX) else "AmazonEC2"
        entry = dict(entries.get(name) or {})
        entry.update(usd_per_hour=price, source=SOURCE.format(service=service), as_of=day)
        entries[name] = entry
    _write_yaml(out, existing)
    return found


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        "# inf3kit catalog override (see docs/plan.md); `prices:` refreshed by "
        "`inf3kit catalog prices --refresh`\n" + yaml.safe_dump(data, sort_keys=False)
    )
    tmp.replace(path)
