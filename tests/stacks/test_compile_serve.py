"""Synthesis compares each Neuron variant's compiler with the SDK that will serve it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import aws_cdk as cdk
import pytest

from inf3kit.runtime.bundle import pack_bundle
from inf3kit.spec import parse_spec
from inf3kit.stacks.service import ServiceStack, neuron_variants

ON_2_27 = "2.9.0.2.11.19912 (neuronx-cc 2.22.12471.0)"
ON_2_29 = "2.9.0.2.13.24727 (neuronx-cc 2.24.5133.0)"


def _archive(tmp_path: Path, compiler: str) -> Path:
    """A packed bundle with a cpu variant and an inf2 variant made by `compiler`."""
    root = tmp_path / "bundle"
    root.mkdir()
    variants = []
    for target, version in (("cpu", "2.13.0+cpu"), ("inf2", compiler)):
        payload = f"compiled for {target}".encode()
        (root / f"model-{target}.pt").write_bytes(payload)
        variants.append(
            {
                "target": target,
                "file": f"model-{target}.pt",
                "batch_size": 8,
                "compiler": {"name": "torch_neuronx.trace", "version": version},
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        )
    manifest = {
        "format_version": 1,
        "name": "ranker",
        "version": "1",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [3]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [1]}],
        "variants": variants,
    }
    (root / "inf3kit-manifest.json").write_text(json.dumps(manifest))
    archive = tmp_path / "model.tar.gz"
    pack_bundle(root, archive)
    return archive


def _build(tmp_path: Path, compiler: str, serving: str) -> ServiceStack:
    _archive(tmp_path, compiler)
    text = f"name: ranker\nmodel: {{bundle: model.tar.gz}}\n{serving}"
    return ServiceStack(cdk.App(), "ranker", loaded=parse_spec(text, base_dir=tmp_path))


def test_the_stack_reads_the_neuron_variants_from_the_packed_manifest(tmp_path: Path) -> None:
    [variant] = neuron_variants(_archive(tmp_path, ON_2_27))
    assert (variant.target, variant.compiler) == ("inf2", ON_2_27)
    assert variant.label == "variant inf2 (batch 8, model-inf2.pt)"


def test_a_bundle_of_the_serving_release_synthesizes(tmp_path: Path) -> None:
    stack = _build(tmp_path, ON_2_27, "endpoint: {instance_type: ml.inf2.xlarge}\n")
    assert stack.endpoint is not None


def test_fails_when_the_endpoint_image_is_older_than_the_compiler(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        _build(tmp_path, ON_2_29, "endpoint: {instance_type: ml.inf2.xlarge}\n")
    assert str(info.value) == (
        "NeuronEndpoint Endpoint: 1 problem\n"
        "  - bundle_variants: variant inf2 (batch 8, model-inf2.pt) was compiled with Neuron "
        f"2.29.0 (compiler {ON_2_29}), newer than the Neuron 2.27.1 of image 'inf3kit-runtime', "
        "whose runtime cannot load it. Fix: serve it with an image or AMI with Neuron >= "
        "2.29.0, or recompile with Neuron 2.27.1 (neuronx-cc 2.22.12471.0, torch-neuronx "
        "2.9.0.2.11.19912)"
    )


def test_fails_when_the_fleet_release_is_older_than_the_compiler(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        _build(tmp_path, ON_2_29, "fleet: {instance_types: [inf2.xlarge, inf2.8xlarge]}\n")
    assert str(info.value).startswith(
        "NeuronFleet Fleet: 1 problem\n"
        "  - bundle_variants: variant inf2 (batch 8, model-inf2.pt) was compiled with Neuron "
        f"2.29.0 (compiler {ON_2_29}), newer than the Neuron 2.27.1 of the fleet's inf2 "
        "instances, whose runtime cannot load it."
    )


def test_a_fleet_on_the_compilers_release_synthesizes(tmp_path: Path) -> None:
    fleet = "fleet: {instance_types: [inf2.xlarge], ami: {neuron_sdk: '2.29.0'}}\n"
    stack = _build(tmp_path, ON_2_29, fleet)
    assert stack.fleet is not None and stack.fleet.neuron_sdk == "2.29.0"


def test_fails_when_the_compiler_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        _build(tmp_path, "unknown", "endpoint: {instance_type: ml.inf2.xlarge}\n")
    assert "was compiled by 'unknown', which no Neuron release of the compatibility" in str(
        info.value
    )
