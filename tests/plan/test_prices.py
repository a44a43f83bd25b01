"""Catalog prices: sources and dates, and `--refresh` from recorded Price List API responses.

The Price List API is not emulated locally (moto has no `pricing`), so the client is a real
botocore client with a Stubber answering with documents in the API's recorded shape.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from inf3kit.catalog import CatalogError, load_catalog
from inf3kit.catalog.price_list import refresh_prices


def price_document(attributes: dict[str, str], usd: str, unit: str = "Hrs") -> str:
    """One PriceList entry as GetProducts returns it (a JSON string per product)."""
    return json.dumps(
        {
            "product": {"productFamily": "Compute Instance", "attributes": attributes},
            "serviceCode": attributes["servicecode"],
            "terms": {
                "OnDemand": {
                    "SKU.JRTCKXETXF": {
                        "priceDimensions": {
                            "SKU.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": unit,
                                "pricePerUnit": {"USD": usd},
                                "description": f"${usd} per On Demand Linux hour",
                            }
                        },
                        "termAttributes": {},
                    }
                }
            },
            "version": "20260101000000",
            "publicationDate": "2026-01-01T00:00:00Z",
        }
    )


EC2_FILTERS = [
    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
    {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "inf2.xlarge"},
    {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
    {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
    {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
    {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
]
SM_FILTERS = [
    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
    {"Type": "TERM_MATCH", "Field": "component", "Value": "Hosting"},
    {"Type": "TERM_MATCH", "Field": "instanceName", "Value": "ml.inf2.xlarge"},
]


def pricing_client() -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client("pricing")


def respond(stub: Stubber, service: str, filters: list[dict[str, str]], docs: list[str]) -> None:
    stub.add_response(
        "get_products",
        {"FormatVersion": "aws_v1", "PriceList": docs},
        {"ServiceCode": service, "Filters": filters, "FormatVersion": "aws_v1"},
    )


def test_every_catalog_size_has_a_price_or_says_it_is_missing() -> None:
    catalog = load_catalog()
    for itype in catalog.types():
        price = catalog.price(itype.name)
        assert price.source and price.as_of, itype.name
        if price.missing:
            assert "Fix: `inf3kit catalog prices --refresh" in price.source
    assert catalog.price("inf3.xlarge").provisional
    assert catalog.price("trn2.48xlarge").missing


def test_refresh_writes_prices_with_source_and_date_into_the_override(tmp_path: Path) -> None:
    out = tmp_path / "catalog.yaml"
    out.write_text("families:\n  inf3:\n    status: ga\n")  # kept: refresh only adds prices
    client = pricing_client()
    with Stubber(client) as stub:
        ec2 = {"servicecode": "AmazonEC2", "instanceType": "inf2.xlarge"}
        respond(stub, "AmazonEC2", EC2_FILTERS, [price_document(ec2, "0.8371000000")])
        sm = {"servicecode": "AmazonSageMaker", "instanceName": "ml.inf2.xlarge"}
        respond(stub, "AmazonSageMaker", SM_FILTERS, [price_document(sm, "1.0100000000")])
        found = refresh_prices(
            client,
            load_catalog(),
            "eu-west-1",
            out,
            types=["inf2.xlarge", "ml.inf2.xlarge"],
            today=dt.date(2026, 12, 1),
        )
        stub.assert_no_pending_responses()
    assert found == {"inf2.xlarge": 0.8371, "ml.inf2.xlarge": 1.01}
    catalog = load_catalog(out)
    price = catalog.price("inf2.xlarge", "eu-west-1")
    assert (price.usd_per_hour, price.as_of) == (0.8371, "2026-12-01")
    assert price.source == "AWS Price List API (pricing:GetProducts, AmazonEC2, on-demand)"
    assert catalog.price("ml.inf2.xlarge", "eu-west-1").usd_per_hour == 1.01
    assert catalog.get("inf3.xlarge").status == "ga"  # the rest of the file is kept
    assert catalog.price("inf2.xlarge").usd_per_hour == 0.7582  # other regions untouched


def test_refresh_leaves_types_aws_does_not_list_unwritten(tmp_path: Path) -> None:
    out = tmp_path / "catalog.yaml"
    client = pricing_client()
    with Stubber(client) as stub:
        respond(stub, "AmazonEC2", EC2_FILTERS, [])
        found = refresh_prices(client, load_catalog(), "eu-west-1", out, types=["inf2.xlarge"])
    assert found == {"inf2.xlarge": None}
    assert load_catalog(out).price("inf2.xlarge", "eu-west-1").missing


def test_zero_and_non_hourly_dimensions_are_not_prices(tmp_path: Path) -> None:
    client = pricing_client()
    ec2 = {"servicecode": "AmazonEC2", "instanceType": "inf2.xlarge"}
    docs = [price_document(ec2, "0.0000000000"), price_document(ec2, "5.0", unit="Quantity")]
    with Stubber(client) as stub:
        respond(stub, "AmazonEC2", EC2_FILTERS, docs)
        found = refresh_prices(
            client, load_catalog(), "eu-west-1", tmp_path / "c.yaml", types=["inf2.xlarge"]
        )
    assert found == {"inf2.xlarge": None}


def test_fails_when_the_filters_match_products_with_different_prices(tmp_path: Path) -> None:
    client = pricing_client()
    ec2 = {"servicecode": "AmazonEC2", "instanceType": "inf2.xlarge"}
    docs = [price_document(ec2, "0.8"), price_document(ec2, "0.9")]
    with Stubber(client) as stub:
        respond(stub, "AmazonEC2", EC2_FILTERS, docs)
        with pytest.raises(
            CatalogError, match=r"returned 2 different on-demand prices .* \(0.8, 0.9\)"
        ):
            refresh_prices(
                client, load_catalog(), "eu-west-1", tmp_path / "c.yaml", types=["inf2.xlarge"]
            )


def test_fails_when_an_override_prices_an_unknown_type(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "prices:\n  us-east-1:\n"
        "    inf9.xlarge: {usd_per_hour: 1, source: me, as_of: '2026-01-01'}\n"
    )
    with pytest.raises(CatalogError, match=r"prices\.us-east-1 names unknown instance types inf9"):
        load_catalog(path)
