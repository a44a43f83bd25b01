"""The runtime endpoint's default timeouts follow the bundle's size (worked by hand)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Size
from aws_cdk.assertions import Template

from inf3kit.constructs import ModelBundle, NeuronEndpoint
from inf3kit.constructs.endpoint_startup import estimate_endpoint_timeouts

GB = 10**9


def test_a_small_or_unknown_bundle_keeps_the_fifteen_minute_floor() -> None:
    # 2 GiB (unknown): download 2.15e9 / 50e6 = 43 s, load 21 s + 120 s; x1.5 is far below 900
    for size in (None, 50 * 10**6):
        timeouts = estimate_endpoint_timeouts(size)
        assert (timeouts.download_seconds, timeouts.startup_seconds) == (900, 900)


def test_a_large_bundle_gets_longer_timeouts() -> None:
    # 60 GB: download 60e9 / 50e6 = 1200 s x 1.5 = 1800; load 600 s + 120 s = 720 x 1.5 = 1080
    timeouts = estimate_endpoint_timeouts(60 * GB)
    assert (timeouts.download_seconds, timeouts.startup_seconds) == (1800, 1080)


def test_the_estimate_stops_at_sagemakers_hour() -> None:
    # 200 GB: download 4000 s x 1.5 = 6000 -> 3600; load (2000 + 120) x 1.5 = 3180
    timeouts = estimate_endpoint_timeouts(200 * GB)
    assert (timeouts.download_seconds, timeouts.startup_seconds) == (3600, 3180)


def test_the_endpoint_sizes_its_variant_from_the_bundle_size_unless_given() -> None:
    stack = cdk.Stack(cdk.App(), "Sized")
    bundle = ModelBundle(stack, "Bundle", s3_uri="s3://models/big/model.tar.gz")
    for name, startup in (("Estimated", None), ("Given", cdk.Duration.minutes(20))):
        NeuronEndpoint(
            stack,
            name,
            instance_type="ml.inf2.xlarge",
            model_data=bundle,
            bundle_size=Size.gibibytes(60),
            startup_timeout=startup,
        )
    configs = Template.from_stack(stack).find_resources("AWS::SageMaker::EndpointConfig")
    variants = {
        ("Given" if name.startswith("Given") else "Estimated"): config["Properties"][
            "ProductionVariants"
        ][0]
        for name, config in configs.items()
    }
    # 60 GiB = 64.4e9 bytes: download 1288 s x 1.5 = 1933; load (644 + 120) x 1.5 = 1147
    assert variants["Estimated"]["ModelDataDownloadTimeoutInSeconds"] == 1933
    assert variants["Estimated"]["ContainerStartupHealthCheckTimeoutInSeconds"] == 1147
    assert variants["Given"]["ContainerStartupHealthCheckTimeoutInSeconds"] == 1200
    assert variants["Given"]["ModelDataDownloadTimeoutInSeconds"] == 1933
