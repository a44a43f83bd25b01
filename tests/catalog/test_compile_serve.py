"""The compile/serve rule: a Neuron variant loads on an SDK at least as new as its compiler's."""

from __future__ import annotations

import pytest

from inf3kit.catalog import CompiledVariant, load_compatibility

COMPAT = load_compatibility()
ON_2_27 = "2.9.0.2.11.19912 (neuronx-cc 2.22.12471.0)"
ON_2_29 = "2.9.0.2.13.24727 (neuronx-cc 2.24.5133.0+a1b2c3d4)"


def _variant(compiler: str, target: str = "inf2") -> CompiledVariant:
    return CompiledVariant.of(target, compiler, 8, f"model-{target}.pt")


@pytest.mark.parametrize(
    ("compiler", "release"),
    [
        (ON_2_27, "2.27.0"),  # 2.27.0 and 2.27.1 ship the same compiler: the earliest counts
        (ON_2_29, "2.29.0"),  # a local version suffix is ignored
        ("2.8.0.2.12.22436", "2.28.0"),  # no neuronx-cc importable: another torch build counts
        ("2.5.1.2.4.0 (neuronx-cc 2.16.372.0)", "2.21.1"),
        ("2.9.0.2.99.1 (neuronx-cc 9.9.9.0)", None),
        ("unknown", None),
    ],
)
def test_a_compiler_belongs_to_the_earliest_release_shipping_it(
    compiler: str, release: str | None
) -> None:
    assert COMPAT.compiled_release(compiler) == release


def test_same_or_older_compiler_serves() -> None:
    variants = [_variant(ON_2_27), _variant("2.5.1.2.4.0 (neuronx-cc 2.16.345.0)")]
    assert (
        COMPAT.serving_problems(
            variants, instance_type="ml.inf2.xlarge", serving="image 'x'", serving_sdk="2.27.1"
        )
        == []
    )


def test_fails_when_the_compiler_is_newer_than_the_serving_sdk() -> None:
    assert COMPAT.serving_problems(
        [_variant(ON_2_29)],
        instance_type="ml.inf2.xlarge",
        serving="image 'inf3kit-runtime'",
        serving_sdk="2.27.1",
    ) == [
        "variant inf2 (batch 8, model-inf2.pt) was compiled with Neuron 2.29.0 (compiler "
        f"{ON_2_29}), newer than the Neuron 2.27.1 of image 'inf3kit-runtime', whose runtime "
        "cannot load it. Fix: serve it with an image or AMI with Neuron >= 2.29.0, or recompile "
        "with Neuron 2.27.1 (neuronx-cc 2.22.12471.0, torch-neuronx 2.9.0.2.11.19912)"
    ]


def test_fails_when_the_compiler_is_unknown() -> None:
    assert COMPAT.serving_problems(
        [_variant("unknown")],
        instance_type="inf2.xlarge",
        serving="the fleet's inf2 instances",
        serving_sdk="2.27.1",
    ) == [
        "variant inf2 (batch 8, model-inf2.pt) was compiled by 'unknown', which no Neuron "
        "release of the compatibility matrix ships, so nothing says the fleet's inf2 instances "
        "(Neuron 2.27.1) can load it. Fix: recompile with Neuron 2.27.1 (neuronx-cc "
        "2.22.12471.0, torch-neuronx 2.9.0.2.11.19912), or add the release that ships this "
        "compiler under `compatibility.neuron_releases` in a catalog override file"
    ]


def test_cpu_and_other_family_variants_are_not_checked() -> None:
    variants = [
        CompiledVariant.of("cpu", "2.13.0+cpu", 8, "model-cpu.pt"),
        _variant(ON_2_29, target="trn2"),
    ]
    assert (
        COMPAT.serving_problems(
            variants, instance_type="ml.inf2.xlarge", serving="image 'x'", serving_sdk="2.21.0"
        )
        == []
    )


def test_an_image_of_unknown_sdk_is_not_checked() -> None:
    assert COMPAT.image_sdk("huggingface-llm-neuronx") is None
    assert COMPAT.image_sdk(None) is None
    assert COMPAT.image_sdk("inf3kit-runtime") == "2.27.1"  # its base DLC's
    problems = COMPAT.serving_problems(
        [_variant("unknown")], instance_type="ml.inf2.xlarge", serving="x", serving_sdk=None
    )
    assert problems == []


def test_servers_lists_the_images_and_fleet_releases_that_load_a_variant() -> None:
    images, releases = COMPAT.servers(_variant(ON_2_27))
    assert images == ["inf3kit-runtime", "pytorch-inference-neuronx"]
    assert releases[:2] == ["2.27.0", "2.27.1"] and releases[-1] == "2.31.1"
    assert COMPAT.servers(_variant(ON_2_29)) == (
        [],
        ["2.29.0", "2.29.1", "2.30.0", "2.31.0", "2.31.1"],
    )
    assert COMPAT.servers(_variant("unknown")) == ([], [])
