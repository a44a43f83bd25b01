"""The fleet's default startup timeout: boot + install + download + load, with a margin."""

from __future__ import annotations

from inf3kit.constructs.fleet_startup import estimate_startup

PINS = ("inf3kit[serve]==0.1.0", "torch-neuronx==2.9.0.2.11.19912", "neuronx-cc==2.22.12471.0")


def test_a_small_bundle_on_the_dlami_waits_for_the_neuron_install() -> None:
    estimate = estimate_startup(
        bundle_bytes=1_000_000, requirements=(*PINS, "torch==2.9.0"), baked=False
    )
    assert (estimate.boot, estimate.install, estimate.download, estimate.load) == (
        180,
        60 + 3 * 180,
        30,
        1 + 120,
    )
    assert estimate.minutes == 24  # ceil(931 s x 1.5 / 60)
    assert estimate.timeout.to_minutes() == 24
    assert estimate.describe() == (
        "24 min = (boot 180 s + install 600 s + download 30 s + load 121 s) x 1.5, within "
        "10..60 min"
    )


def test_a_baked_ami_skips_the_neuron_install() -> None:
    estimate = estimate_startup(bundle_bytes=1_000_000, requirements=PINS, baked=True)
    assert estimate.install == 60
    assert estimate.minutes == 10  # 586 s x 1.5 is under the 10-minute floor


def test_the_bundle_size_drives_download_and_load() -> None:
    big = estimate_startup(bundle_bytes=20 * 10**9, requirements=PINS, baked=True)
    assert (big.download, big.load) == (800, 200 + 120)
    assert big.minutes == 34  # (180 + 60 + 800 + 320) x 1.5 = 2040 s
    unknown = estimate_startup(bundle_bytes=None, requirements=PINS, baked=True)
    assert unknown.download == 86  # taken as 2 GiB


def test_the_estimate_stays_within_an_hour() -> None:
    huge = estimate_startup(bundle_bytes=200 * 10**9, requirements=PINS, baked=False)
    assert huge.minutes == 60
