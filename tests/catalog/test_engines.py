"""The LLM engines of the compatibility matrix: consistent data, and refusals that name a fix."""

from __future__ import annotations

from inf3kit.catalog import load_catalog, load_compatibility

COMPAT = load_compatibility()


def test_every_engine_image_names_known_families_and_the_sdk_its_tag_ships() -> None:
    families = set(load_catalog().families)
    for name, engine in COMPAT.data.engines.items():
        for image in engine.images:
            assert set(image.families) <= families, (name, image.tag)
            assert f"sdk{image.neuron_sdk}" in image.tag, (name, image.tag)


def test_auto_prefers_the_plugin_where_it_exists_and_one_image_for_a_mixed_fleet() -> None:
    assert COMPAT.engine_choice("trn2.48xlarge")[0] == "vllm-neuron"  # type: ignore[index]
    name, image = COMPAT.engine_choice(["trn2.48xlarge", "trn1.32xlarge"])  # type: ignore[misc]
    assert (name, image.tag) == ("vllm-nxd-inference", "0.16.0-neuronx-py312-sdk2.31.1-ubuntu24.04")
    old = COMPAT.engine_choice("trn2.48xlarge", neuron_sdk="2.26.1")
    assert old[1].tag == "0.9.1-neuronx-py311-sdk2.26.1-ubuntu22.04"  # type: ignore[union-attr]


def test_fails_when_a_distribution_does_not_run_on_the_platform() -> None:
    assert COMPAT.engine_choice("inf2.xlarge", "lmi-neuronx") == (
        "inf2.xlarge: lmi-neuronx does not run on EC2. Fix: llm.distribution vllm-nxd-inference "
        "(or auto); or add the engine to your catalog override file under `compatibility.engines`"
    )


def test_fails_when_the_distribution_is_unknown() -> None:
    assert COMPAT.engine_choice("inf2.xlarge", "vllm") == (
        "llm.distribution 'vllm' is not in the compatibility matrix; known: vllm-neuron, "
        "vllm-nxd-inference, lmi-neuronx. Fix: use one of those, or `auto`"
    )


def test_fails_when_the_pinned_sdk_has_no_image_for_the_family() -> None:
    assert COMPAT.engine_choice("trn2.48xlarge", "vllm-neuron", "2.26.1") == (
        "trn2.48xlarge: no vllm-neuron image for trn2 ships Neuron SDK 2.26.1 (published: "
        "2.32.0, 2.31.1, 2.31.0). Fix: another llm.neuron_sdk from that list, or remove it; or "
        "add the engine to your catalog override file under `compatibility.engines`"
    )
