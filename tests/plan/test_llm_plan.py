"""LLM plans: cost per million output tokens from a measured or a published figure, labelled,
and no estimate (with the reason) where there is no figure or no price."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.plan.llm import llm_plan, read_llm_profile
from inf3kit.plan.profile import ProfileError
from inf3kit.spec import load_spec

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def priced_fleet(tmp_path: Path) -> Path:
    """examples/llm-fleet.yaml with a trn2.48xlarge price (the catalog records none): 36 $/h, a
    round test value, not a quote."""
    shutil.copytree(EXAMPLES / "llm", tmp_path / "llm")
    (tmp_path / "prices.yaml").write_text(
        "families:\n  trn2:\n    sizes:\n      trn2.48xlarge: {price: 36.0}\n"
    )
    spec = tmp_path / "llm-fleet.yaml"
    spec.write_text("catalog: prices.yaml\n" + (EXAMPLES / "llm-fleet.yaml").read_text())
    return spec


def test_a_published_figure_gives_the_cost_per_million_output_tokens(priced_fleet: Path) -> None:
    """Llama-3.3-70B (the shape of 3.1-70B) on trn2.48xlarge, published at 36 tokens/s:
    36 $/h / (36 tokens/s x 3600 s/h) x 1e6 = 277.78 $ per million output tokens."""
    [row] = llm_plan(load_spec(priced_fleet))
    assert (row.instance_type, row.basis, row.tensor_parallel, row.replicas_per_instance) == (
        "trn2.48xlarge",
        "published",
        16,
        4,
    )
    assert row.figure is not None and row.figure.tensor_parallel == 64
    assert row.usd_per_million_output_tokens == pytest.approx(277.7778, abs=1e-4)


def test_a_measured_figure_wins(tmp_path: Path) -> None:
    """100 tokens/s measured on ml.inf2.xlarge at 0.76 $/h: 0.76 / 360000 x 1e6 = 2.1111."""
    measured = tmp_path / "inf2.json"
    measured.write_text(
        json.dumps(
            {
                "kind": "llm-throughput",
                "model": "Llama-3.1-8B-Instruct",
                "instance_type": "inf2.xlarge",
                "output_tokens_per_second": 100,
                "source": "vllm bench serve on inf2.xlarge, TP 2, 4 sequences (test value)",
            }
        )
    )
    [row] = llm_plan(load_spec(EXAMPLES / "llm-endpoint.yaml"), [measured])
    assert (row.instance_type, row.basis) == ("ml.inf2.xlarge", "measured")
    assert row.usd_per_million_output_tokens == pytest.approx(2.1111, abs=1e-4)


def test_no_figure_means_no_estimate_and_says_why() -> None:
    [row] = llm_plan(load_spec(EXAMPLES / "llm-endpoint.yaml"))
    assert (row.basis, row.usd_per_million_output_tokens) == ("none", None)
    assert row.why_not == (
        "no measured or published throughput for this model on ml.inf2.xlarge. Fix: measure "
        "one on the hardware and pass it with --profile (docs/llm.md)"
    )


def test_fails_when_the_throughput_file_is_not_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "llm-throughput", "instance_type": "inf2.xlarge"}')
    with pytest.raises(ProfileError, match=r"is not an LLM throughput file"):
        read_llm_profile(bad)


def test_fails_when_the_throughput_file_is_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "utf16.json"
    bad.write_bytes(b"\xff\xfe{\x00}\x00")
    with pytest.raises(ProfileError, match=r"is not an LLM throughput file"):
        read_llm_profile(bad)


def test_the_cli_prints_the_figure_its_source_and_why_a_row_has_no_cost(
    priced_fleet: Path,
) -> None:
    result = runner.invoke(app, ["plan", str(priced_fleet), "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)["llm"]
    assert row["usd_per_million_output_tokens"] == 277.7778
    assert row["figure_source"].startswith("Neuron docs, NxD Inference tutorial")
    unpriced = runner.invoke(app, ["plan", str(EXAMPLES / "llm-fleet.yaml")])
    assert unpriced.exit_code == 0, unpriced.output
    assert "trn2.48xlarge: no estimate, no price for trn2.48xlarge" in " ".join(
        unpriced.output.split()
    )


def test_fails_when_runtime_flags_are_given_for_an_llm_spec_or_missing_for_a_runtime_one() -> None:
    llm = runner.invoke(app, ["plan", str(EXAMPLES / "llm-endpoint.yaml"), "--rps", "5"])
    assert llm.exit_code == 1
    assert "--rps applies only to runtime specs" in " ".join(llm.output.split())
    runtime = runner.invoke(app, ["plan", str(EXAMPLES / "demo.yaml")])
    assert runtime.exit_code == 1
    assert "--rps and --p99-ms are required for a runtime spec" in " ".join(runtime.output.split())
