"""Instance prices per region, each with its source and date.

Prices are data: the shipped catalog records the us-east-1 on-demand prices on each size
(`price`, `ml_price`); the `prices:` section (shipped or in an override file, which
`inf3kit catalog prices --refresh` writes from the AWS Price List API) holds any region.
A price nobody recorded stays missing and says how to add it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from inf3kit.catalog.hardware import InstanceType

BASE_REGION = "us-east-1"
"""The region of the prices recorded on the sizes themselves."""

HOURS_PER_MONTH = 730
"""AWS's own monthly convention (8760 hours / 12) on its pricing pages and calculator."""


class PriceData(BaseModel):
    """One recorded price: on-demand USD per hour, optional Spot, where it came from and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd_per_hour: float | None = Field(None, gt=0)
    spot_usd_per_hour: float | None = Field(None, gt=0)
    source: str = Field(min_length=1)
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    provisional: bool = False


@dataclass(frozen=True)
class Price:
    """The price `inf3kit plan` uses for one type in one region."""

    instance_type: str
    region: str
    usd_per_hour: float | None
    source: str
    as_of: str
    provisional: bool
    spot_usd_per_hour: float | None = None

    @property
    def missing(self) -> bool:
        return self.usd_per_hour is None


def price_in_region(itype: InstanceType, region: str, recorded: dict[str, PriceData]) -> Price:
    """The `prices:` entry for the type, else the size's own price in us-east-1, else missing."""
    entry = recorded.get(itype.name)
    if entry is not None:
        return Price(
            itype.name,
            region,
            entry.usd_per_hour,
            entry.source,
            entry.as_of,
            entry.provisional or itype.provisional,
            entry.spot_usd_per_hour,
        )
    if region == BASE_REGION and itype.price_usd_per_hour is not None:
        return Price(
            itype.name,
            region,
            itype.price_usd_per_hour,
            itype.price_source,
            itype.price_as_of,
            itype.provisional,
        )
    why = f"no {region} price recorded"
    if itype.price_source.startswith("not "):
        why += f"; catalog note: {itype.price_source}"
    return Price(
        itype.name,
        region,
        None,
        f"missing ({why}). Fix: `inf3kit catalog prices --refresh --region {region}`, "
        "or add it under `prices:` in a catalog override file",
        itype.price_as_of,
        itype.provisional,
    )
