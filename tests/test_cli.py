"""The `inf3kit` command: validate, synth and catalog, as a user runs them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from inf3kit.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_validate_accepts_the_demo_spec() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLES / "demo.yaml")])
    assert result.exit_code == 0, result.output
    assert "service 'demo'" in result.output


def test_validate_shows_what_auto_resolved_for_an_llm_spec() -> None:
    """70B at degree 16 on trn2: 133.9 GiB of weights (k/v replicated to 16 heads) + 40 GiB of
    KV cache (8192 x 8 tokens x 640 KiB) = 173.9 GiB of 16 x 24 x 0.9 = 345.6 GiB."""
    result = runner.invoke(app, ["validate", str(EXAMPLES / "llm-fleet.yaml")])
    assert result.exit_code == 0, result.output
    assert (
        "llm fleet: tensor_parallel 16; trn2.48xlarge: 4 groups of 16 NeuronCores per instance, "
        "each needs 173.9 of 345.6 GiB usable; engine vllm-neuron (pytorch-inference-vllm-neuronx:"
    ) in " ".join(result.output.split())


def test_validate_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(
        "name: Bad_Name\nmodel: {bundle: s3://b/m.zip}\n"
        "fleet:\n  instance_types: [ml.inf2.xlarge]\n  capacity: {min: 3, max: 1}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "4 problem(s)" in output
    for expected in (
        "name (line 1): got 'Bad_Name'",
        "model.bundle (line 2): 's3://b/m.zip' is not an s3 URI of a bundle archive",
        "fleet.instance_types[0] (line 4): 'ml.inf2.xlarge' is a SageMaker type",
        "fleet.capacity (line 5): min (3) is greater than max (1)",
    ):
        assert expected in output


def test_catalog_lists_every_family_and_marks_inf3_provisional() -> None:
    result = runner.invoke(app, ["catalog"])
    assert result.exit_code == 0
    for name in ("inf1.xlarge", "inf2.48xlarge", "trn1.32xlarge", "trn2.48xlarge", "g5.xlarge"):
        assert name in result.output
    inf3 = runner.invoke(app, ["catalog", "--family", "inf3"])
    assert "provisional" in inf3.output and "inf2.xlarge" not in inf3.output


def test_fails_when_catalog_family_is_unknown() -> None:
    result = runner.invoke(app, ["catalog", "--family", "inf7"])
    assert result.exit_code == 1
    assert "unknown family 'inf7'" in result.output


def test_synth_prints_stacks_warnings_and_gates(demo_bundle: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["synth", str(EXAMPLES / "demo.yaml"), "-o", str(tmp_path), "--no-checkov"]
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "stack demo:" in output
    assert "ml.inf3.xlarge is provisional" in output
    assert "cdk-nag: pass" in output and "cfn-lint: pass" in output
    assert (tmp_path / "demo.template.json").exists()


def test_error_text_is_never_read_as_markup(tmp_path: Path) -> None:
    """Spec values, file names and AWS messages may hold brackets; rich must print them."""
    spec = tmp_path / "[bold]odd.yaml"
    spec.write_text("name: '[/]x'\n")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert f"{spec}: 2 problem(s)" in result.output
    assert "  - name (line 1): got '[/]x'" in result.output
