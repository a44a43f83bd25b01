"""Fixtures for plan tests: a hand-made profile, a simple-priced catalog, a tiny real bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from inf3kit.catalog import Catalog, load_catalog
from inf3kit.plan.profile import LoadPoint, Profile

HERE = Path(__file__).parent
TINY = str(HERE.parent / "runtime" / "tiny_models.py")

# Round prices so every expected figure in the tests can be worked out by hand.
PRICES = """\
families:
  inf2:
    sizes:
      inf2.xlarge: {price: 0.5, ml_price: 0.6}
prices:
  us-east-1:
    inf2.8xlarge: {usd_per_hour: 2.0, spot_usd_per_hour: 0.8, source: test, as_of: "2026-01-01"}
"""


def point(concurrency: int, samples_per_s: float, p99_ms: float, batch: int = 8) -> LoadPoint:
    return LoadPoint(
        batch_size=batch,
        concurrency=concurrency,
        requests=100,
        seconds=1.0,
        samples_per_s=samples_per_s,
        p50_ms=p99_ms / 2,
        p99_ms=p99_ms,
    )


def make_profile(target: str = "cpu", model_bytes: int = 1 << 20) -> Profile:
    """Knee at concurrency 4 (400/s >= 90% of the best 420/s)."""
    return Profile(
        model="m",
        model_version="1",
        target=target,
        device="test",
        how="hand-made",
        when="2026-01-01T00:00:00+00:00",
        model_bytes=model_bytes,
        max_delay_ms=2,
        points=(point(1, 100, 5), point(2, 200, 6), point(4, 400, 9), point(8, 420, 30)),
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES)
    return load_catalog(path)


@pytest.fixture(scope="session")
def echo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from inf3kit.runtime.commands import compile_bundle

    out = tmp_path_factory.mktemp("echo") / "bundle"
    compile_bundle(f"{TINY}:echo", ["INPUT__0:FP32:4"], out, batch_size=4, name="echo")
    return out
