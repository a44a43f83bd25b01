"""Download and startup timeouts sized from the model: hand-computed from the stated rates."""

from __future__ import annotations

from inf3kit.llm.startup import LoadEstimate, estimate

GIB = 1024**3


def test_a_small_compiled_model_gets_the_ten_minute_floor() -> None:
    # download 16 GiB / 100 MiB/s = 163.84 s x 1.5 = 245.76 -> floor 600
    # startup 300 + 16 GiB / 200 MiB/s = 381.92 s x 1.5 = 572.88 -> 573, floor 600
    assert estimate(16 * GIB, 8_000_000_000, from_hub=False, compiled=True) == LoadEstimate(
        download_seconds=600, startup_seconds=600, needed_startup_seconds=573, compiles=False
    )


def test_an_uncompiled_8b_model_adds_the_compile() -> None:
    # startup 300 + 81.92 (load) + 600 + 8 x 40 (compile) = 1301.92 s x 1.5 = 1952.88 -> 1953
    assert estimate(16 * GIB, 8_000_000_000, from_hub=False, compiled=False) == LoadEstimate(
        download_seconds=600, startup_seconds=1953, needed_startup_seconds=1953, compiles=True
    )


def test_hub_weights_download_during_startup_not_before() -> None:
    # SageMaker downloads nothing; the engine's 16 GiB / 50 MiB/s = 327.68 s joins the startup:
    # (1301.92 + 327.68) x 1.5 = 2444.4 -> 2445
    assert estimate(16 * GIB, 8_000_000_000, from_hub=True, compiled=False) == LoadEstimate(
        download_seconds=600, startup_seconds=2445, needed_startup_seconds=2445, compiles=True
    )


def test_a_70b_model_is_capped_at_sagemakers_hour_and_reports_what_it_needs() -> None:
    # download 140 GiB / 100 MiB/s = 1433.6 s x 1.5 = 2150.4 -> 2151
    # startup 300 + 716.8 + 600 + 70 x 40 = 4416.8 s x 1.5 = 6625.2 -> 6626, capped at 3600
    assert estimate(140 * GIB, 70_000_000_000, from_hub=False, compiled=False) == LoadEstimate(
        download_seconds=2151, startup_seconds=3600, needed_startup_seconds=6626, compiles=True
    )


def test_a_compiled_70b_model_starts_within_the_hour() -> None:
    # (300 + 716.8) x 1.5 = 1525.2 -> 1526
    assert estimate(140 * GIB, 70_000_000_000, from_hub=False, compiled=True).startup_seconds == (
        1526
    )
