"""`inf3kit profile`, `inf3kit plan`, `inf3kit catalog prices` and the validate warning, as run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.plan.profile import profile_path, read_profile, write_profile
from inf3kit.spec import parse_spec
from inf3kit.spec.capacity import scaling_target_warnings
from tests.plan.conftest import make_profile

runner = CliRunner()

SPEC = """\
name: svc
model: {bundle: bundle}
endpoint:
  instance_type: ml.inf2.xlarge  # picked by hand
  instances: {min: 1, max: 2}
  scaling: {invocations_per_instance: TARGET}
fleet:
  instance_types: [inf2.xlarge]
  capacity: {min: 1, max: 4}
"""


@pytest.fixture(scope="module")
def profiled(echo_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the echo bundle, profiled by the CLI (the profile lands next to the manifest)."""
    root = tmp_path_factory.mktemp("svc")
    shutil.copytree(echo_bundle, root / "bundle")
    result = runner.invoke(
        app,
        ["profile", str(root / "bundle"), "--concurrency", "1", "--concurrency", "4",
         "--seconds", "0.05"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "profile written to" in result.output and "knee" in result.output
    return root


def spec_in(root: Path, target: int = 500) -> Path:
    path = root / f"svc-{target}.yaml"
    path.write_text(SPEC.replace("TARGET", str(target)))
    return path


def test_profile_is_stored_next_to_the_manifest(profiled: Path) -> None:
    profile = read_profile(profiled / "bundle" / "inf3kit-profile-cpu.json")
    assert profile.target == "cpu" and len(profile.points) == 2


def test_plan_prints_a_table_with_cpu_measured_and_provisional_rows(profiled: Path) -> None:
    result = runner.invoke(app, ["plan", str(spec_in(profiled)), "--rps", "100", "--p99-ms", "50"])
    assert result.exit_code == 0, result.output
    assert "CPU-measured" in result.output
    assert "ml.inf3.xlarge" in result.output and "PROVISIONAL" in result.output
    assert "excluded trn2.48xlarge" in result.output


def test_plan_json_and_html(profiled: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = runner.invoke(
        app,
        ["plan", str(spec_in(profiled)), "--rps", "100", "--p99-ms", "50", "--json",
         "--html", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {r["platform"] for r in data["rows"]} == {"ec2", "sagemaker"}
    assert "<svg" in report.read_text()


def test_plan_apply_writes_the_cheapest_ga_choice(profiled: Path) -> None:
    spec = spec_in(profiled, 400)
    result = runner.invoke(app, ["plan", str(spec), "--rps", "100", "--p99-ms", "50", "--apply"])
    assert result.exit_code == 0, result.output
    assert "applied endpoint.scaling.invocations_per_instance: 400 ->" in result.output
    text = spec.read_text()
    assert "# picked by hand" in text
    loaded = parse_spec(text, base_dir=profiled)
    assert loaded.spec.endpoint is not None
    assert not loaded.catalog.get(loaded.spec.endpoint.instance_type).provisional


def test_plan_apply_with_choose_takes_that_type(profiled: Path) -> None:
    spec = spec_in(profiled, 401)
    result = runner.invoke(
        app,
        ["plan", str(spec), "--rps", "100", "--p99-ms", "50", "--apply",
         "--choose", "ml.inf3.xlarge", "--choose", "inf2.8xlarge"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "instance_type: ml.inf3.xlarge" in spec.read_text()
    assert "instance_types: [inf2.8xlarge, inf2.xlarge]" in spec.read_text()


def test_fails_when_choose_names_an_excluded_type(profiled: Path) -> None:
    result = runner.invoke(
        app,
        ["plan", str(spec_in(profiled)), "--rps", "100", "--p99-ms", "50", "--apply",
         "--choose", "trn2.48xlarge"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--choose trn2.48xlarge: not in the plan (no profile for this family" in " ".join(
        result.output.split()
    )


def test_fails_when_there_is_no_profile(tmp_path: Path) -> None:
    spec = tmp_path / "svc.yaml"
    spec.write_text(SPEC.replace("TARGET", "500"))
    result = runner.invoke(app, ["plan", str(spec), "--rps", "100", "--p99-ms", "50"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "no profile for the bundle" in text and "Fix: run `inf3kit profile" in text


def test_validate_warns_when_a_scaling_target_is_above_the_knee(
    echo_bundle: Path, tmp_path: Path
) -> None:
    """The hand-made profile's knee: 400/s per replica, 2 replicas on ml.inf2.xlarge ->
    800/s = 48,000 per instance per minute."""
    shutil.copytree(echo_bundle, tmp_path / "bundle")
    write_profile(make_profile(), profile_path(tmp_path / "bundle", "cpu"))
    result = runner.invoke(app, ["validate", str(spec_in(tmp_path, 50_000))])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        "warning endpoint.scaling.invocations_per_instance (50000 per minute) is above the "
        "profiled knee of ml.inf2.xlarge (48000 per instance per minute)" in text
    )
    assert "fleet.scaling.requests_per_instance" not in text  # 400/min is below the knee
    quiet = runner.invoke(app, ["validate", str(spec_in(tmp_path, 48_000))])
    assert quiet.exit_code == 0 and "warning" not in quiet.output


def test_scaling_target_warnings_name_the_field_the_knee_and_the_fix() -> None:
    spec = parse_spec(SPEC.replace("TARGET", "600")).spec
    warnings = scaling_target_warnings(spec, {"ml.inf2.xlarge": 500.0, "inf2.xlarge": 500.0})
    assert warnings == [
        "endpoint.scaling.invocations_per_instance (600 per minute) is above the profiled knee "
        "of ml.inf2.xlarge (500 per instance per minute): instances would queue and miss "
        "latency before scaling out. Fix: set it to at most 400 (80% of the knee), or run "
        "`inf3kit plan` and `--apply`"
    ]


def test_catalog_prices_lists_sources_and_missing_prices() -> None:
    result = runner.invoke(app, ["catalog", "prices", "--region", "us-east-1"])
    assert result.exit_code == 0, result.output
    assert "inf2.xlarge" in result.output and "0.7582" in result.output
    assert "missing" in result.output


def test_fails_when_refresh_has_no_file_to_update(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INF3KIT_CATALOG", raising=False)
    result = runner.invoke(app, ["catalog", "prices", "--refresh"])
    assert result.exit_code == 1
    assert "no override file to update. Fix: pass --out FILE" in " ".join(result.output.split())


def test_fails_when_url_profile_has_no_target(profiled: Path) -> None:
    result = runner.invoke(
        app, ["profile", str(profiled / "bundle"), "--url", "http://localhost:1"]
    )
    assert result.exit_code == 1
    assert "--url needs --target" in result.output


def test_plan_excludes_the_types_the_spec_would_refuse(profiled: Path) -> None:
    """A fleet cannot run Inf1, and with two instances the endpoint rolls out by canary,
    which SageMaker refuses on ml.inf1 (the compatibility matrix's reasons)."""
    spec = spec_in(profiled, 402)
    spec.write_text(spec.read_text().replace("{min: 1, max: 2}", "{min: 2, max: 4}"))
    result = runner.invoke(app, ["plan", str(spec), "--rps", "100", "--p99-ms", "50", "--json"])
    data = json.loads(result.output)
    excluded = {e["instance_type"]: e["reason"] for e in data["excluded"]}
    assert excluded["inf1.xlarge"].startswith("the spec refuses it: the Neuron DLAMIs no longer")
    assert excluded["ml.inf1.xlarge"].startswith(
        "the spec refuses it: canary: SageMaker deployment guardrails do not support Inf1"
    )
    table = runner.invoke(app, ["plan", str(spec), "--rps", "100", "--p99-ms", "50"]).output
    assert "excluded inf1.xlarge, inf1.2xlarge, inf1.6xlarge, inf1.24xlarge: the spec" in " ".join(
        table.split()
    )
    assert not any(r["family"] == "inf1" for r in data["rows"])
