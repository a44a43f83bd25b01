"""`inf3kit compile`, `inf3kit bundle` and `inf3kit serve` through the real typer app."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from conftest import TINY
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.runtime.manifest import read_manifest

runner = CliRunner()


def test_compile_then_bundle(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    args = ["compile", f"{TINY}:echo", "--input", "INPUT__0:FP32:4", "--out", str(out)]
    result = runner.invoke(app, [*args, "--batch-size", "4", "--name", "echo"])
    assert result.exit_code == 0, result.output
    assert "echo 1 + cpu batch 4 -> model-cpu-b4.pt" in result.output
    assert [v.batch_size for v in read_manifest(out).variants] == [4]
    archive = tmp_path / "model.tar.gz"
    result = runner.invoke(app, ["bundle", str(out), "-o", str(archive)])
    assert result.exit_code == 0, result.output
    assert "model-cpu-b4.pt" in result.output
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["inf3kit-manifest.json", "model-cpu-b4.pt"]


def test_bundle_prints_what_can_serve_each_neuron_variant(tmp_path: Path) -> None:
    """The same rule synthesis applies: an SDK at least as new as the variant's compiler."""
    out = tmp_path / "bundle"
    args = ["compile", f"{TINY}:echo", "--input", "INPUT__0:FP32:4", "--out", str(out)]
    assert runner.invoke(app, [*args, "--batch-size", "4", "--name", "echo"]).exit_code == 0
    manifest = json.loads((out / "inf3kit-manifest.json").read_text())
    cpu = manifest["variants"][0]
    for target, compiler in (
        ("inf2", "2.9.0.2.11.19912 (neuronx-cc 2.22.12471.0)"),
        ("trn2", "unknown"),
    ):
        manifest["variants"].append(
            {
                **cpu,
                "target": target,
                "compiler": {"name": "torch_neuronx.trace", "version": compiler},
            }
        )
    (out / "inf3kit-manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["bundle", str(out), "-o", str(tmp_path / "model.tar.gz")])
    assert result.exit_code == 0, result.output
    assert (
        "variant inf2 (batch 4, model-cpu-b4.pt): compiled with Neuron 2.27.0; endpoint images: "
        "inf3kit-runtime, pytorch-inference-neuronx; fleets: neuron_sdk 2.27.0 or later"
    ) in result.output
    assert (
        "variant trn2 (batch 4, model-cpu-b4.pt): compiler 'unknown' is in no Neuron release of "
        "the compatibility matrix, so synthesis refuses it"
    ) in result.output
    assert "variant cpu" not in result.output


def test_fails_when_bundling_a_directory_without_manifest(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bundle", str(tmp_path), "-o", str(tmp_path / "m.tar.gz")])
    assert result.exit_code == 1
    assert "bundle refused" in result.output
    assert "no manifest" in result.output


def test_fails_when_serve_settings_are_invalid(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", str(tmp_path), "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers=0: must be >= 1" in result.output  # the flag, not INF3KIT_WORKERS


def test_compile_shape_buckets_with_dim_and_pad(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    inputs = ["--input", "ids:INT64:seq", "--input", "mask:INT64:seq"]
    buckets = ["--dim", "seq=16,8", "--pad", "ids=7", "--pad", "mask=0"]
    args = ["compile", f"{TINY}:masked_tokens", *inputs, *buckets, "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert [v.dims for v in manifest.variants] == [{"seq": 8}, {"seq": 16}]
    assert [(s.shape, s.pad) for s in manifest.inputs] == [((16,), 7), ((16,), 0)]
    result = runner.invoke(app, [*args[:-2], "--dim", "seq=x", "--out", str(out)])
    assert result.exit_code == 1
    assert "--dim 'seq=x': expected NAME=V1,V2,... such as seq=16,32,64" in result.output
