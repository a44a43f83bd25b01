"""`inf3kit neuron-metrics`: neuron-monitor reports in, NeuronCore utilisation in CloudWatch out.

The fixtures follow the report format of AWS's Neuron Monitor User Guide ("The JSON output
format", "neuroncore_counters"); the real neuron-monitor needs Neuron hardware.
"""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.runtime.neuron_metrics import (
    DIMENSION,
    METRIC_NAME,
    NAMESPACE,
    MonitorError,
    Publisher,
    ReportError,
    forward,
    metric_datum,
    parse_report,
    run_monitor,
)

REPO = Path(__file__).resolve().parents[2]
ASG = "ranker-FleetASG-1A2B3C"
REGION = "us-east-1"
INSTANCE_INFO = {
    "instance_id": "i-0011223344556677a",
    "instance_type": "inf2.xlarge",
    "instance_region": REGION,
    "error": "",
}
HARDWARE_INFO = {
    "neuron_device_type": "inferentia2",
    "neuroncore_version": "v2",
    "neuron_device_count": 1,
    "neuroncore_per_device_count": 2,
    "error": "",
}


def runtime(*utilisations: float, pid: int = 4242, error: str = "") -> dict[str, Any]:
    """One neuron_runtime_data entry whose cores 0..n-1 report these utilisations."""
    cores = {
        str(i): {"neuroncore_utilization": u, "flops": 1234567891011}
        for i, u in enumerate(utilisations)
    }
    return {
        "pid": pid,
        "address": "",
        "neuron_runtime_tag": str(pid),
        "error": error,
        "report": {
            "neuroncore_counters": {
                "period": 5.000113182,
                "neuroncores_in_use": cores,
                "error": "",
            },
            "execution_stats": {"period": 5.03, "error_summary": {"generic": 0}, "error": ""},
            "memory_used": {"period": 5.03, "error": ""},
        },
    }


def report(*runtimes: dict[str, Any]) -> str:
    """A neuron-monitor report line with the sections every report has."""
    return json.dumps(
        {
            "neuron_runtime_data": list(runtimes),
            "system_data": {"vcpu_usage": {"period": 5.0, "error": ""}},
            "instance_info": INSTANCE_INFO,
            "neuron_hardware_info": HARDWARE_INFO,
        }
    )


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("INF3KIT_ASG_NAME", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def _statistics(client: Any) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return list(
        client.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=METRIC_NAME,
            Dimensions=[{"Name": DIMENSION, "Value": ASG}],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=10),
            Period=3600,
            Statistics=["Average", "Maximum", "Minimum", "SampleCount"],
        )["Datapoints"]
    )


# --- parsing -------------------------------------------------------------------------------


def test_mean_over_the_neuroncores_in_use() -> None:
    assert parse_report(report(runtime(40.0, 80.0))) == 60.0


def test_mean_spans_every_runtime_on_the_host() -> None:
    assert parse_report(report(runtime(40.0, pid=1), runtime(80.0, 60.0, pid=2))) == 60.0


def test_no_runtime_attached_reads_as_idle() -> None:
    assert parse_report(report()) == 0.0


def test_runtime_without_active_cores_reads_as_idle() -> None:
    assert parse_report(report(runtime())) == 0.0


def test_trn2_physical_core_breakdown_is_ignored_for_the_logical_core_value() -> None:
    entry = runtime(42.0)
    entry["report"]["neuroncore_counters"]["neuroncores_in_use"]["0"]["v3d"] = {
        "nc_v3.0": {"neuroncore_utilization": 21.0},
        "nc_v3.1": {"neuroncore_utilization": 63.0},
    }
    assert parse_report(report(entry)) == 42.0


def test_runtimes_that_failed_to_report_give_no_value() -> None:
    failed_counters = runtime(90.0)
    failed_counters["report"]["neuroncore_counters"]["error"] = "cannot read counters"
    assert parse_report(report(runtime(90.0, error="runtime gone"), failed_counters)) is None
    assert parse_report(report(runtime(90.0, error="runtime gone"), runtime(30.0))) == 30.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"neuron_runtime_data": [', "not JSON (Expecting value at offset 25)"),
        ("[1, 2]", "a JSON list, not a report object"),
        (
            json.dumps({"instance_info": INSTANCE_INFO}),
            "no neuron_runtime_data list; run neuron-monitor with the neuroncore_counters group",
        ),
        (
            json.dumps({"neuron_runtime_data": ["x"]}),
            "a neuron_runtime_data entry is not an object",
        ),
        (
            report(runtime("high")),
            "NeuronCore 0: neuroncore_utilization 'high' is not a percentage",
        ),  # type: ignore[arg-type]
        (
            report(runtime(50.0, -1.0)),
            "NeuronCore 1: neuroncore_utilization -1.0 is not a percentage",
        ),
        (
            report(runtime(float("nan"))),
            "NeuronCore 0: neuroncore_utilization nan is not a percentage",
        ),
        (report(runtime(True)), "NeuronCore 0: neuroncore_utilization True is not a percentage"),
    ],
)
def test_fails_when_a_line_is_not_a_usable_report(line: str, message: str) -> None:
    with pytest.raises(ReportError) as info:
        parse_report(line)
    assert str(info.value) == message


# --- the loop ------------------------------------------------------------------------------


class Recorder:
    """Stands in for CloudWatch: records each period's samples, optionally failing."""

    def __init__(self, ok: bool = True) -> None:
        self.periods: list[list[float]] = []
        self.ok = ok

    def __call__(self, samples: Any) -> bool:
        self.periods.append(list(samples))
        return self.ok


def test_one_publish_per_period(caplog: pytest.LogCaptureFixture) -> None:
    ticks = iter([0, 10, 61, 61, 70, 80])  # start, then one reading per report (+ restart)
    lines = [
        report(runtime(40.0, 80.0)),
        report(runtime(20.0, 20.0)),  # closes the first period at 61 s
        "",
        report(),
        report(runtime(100.0, 100.0)),
    ]
    publish = Recorder()
    stats = forward(lines, publish, period=60, clock=lambda: next(ticks))
    assert publish.periods == [[60.0, 20.0], [0.0, 100.0]]
    assert (stats.reports, stats.malformed, stats.published, stats.dropped) == (4, 0, 2, 0)
    assert caplog.records == []


def test_malformed_lines_are_counted_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    lines = ["neuron-monitor: starting\n", report(runtime(50.0)), '{"truncated": \n']
    publish = Recorder()
    with caplog.at_level(logging.WARNING, logger="inf3kit.neuron_metrics"):
        stats = forward(lines, publish, period=60, clock=lambda: 0.0)
    assert publish.periods == [[50.0]]
    assert (stats.reports, stats.malformed) == (1, 2)
    assert [r.getMessage() for r in caplog.records] == [
        "skipped line 1 (not JSON (Expecting value at offset 0)): neuron-monitor: starting",
        'skipped line 3 (not JSON (Expecting value at offset 15)): {"truncated":',
    ]


def test_a_period_without_values_publishes_nothing() -> None:
    failed = runtime(10.0, error="runtime gone")
    publish = Recorder()
    stats = forward([report(failed), "garbage"], publish, period=60, clock=lambda: 0.0)
    assert publish.periods == [] and stats.published == 0


def test_a_failing_publish_never_stops_the_loop() -> None:
    ticks = iter([0, 60, 60, 120, 120, 130])
    publish = Recorder(ok=False)
    lines = [report(runtime(10.0)), report(runtime(20.0)), report(runtime(30.0))]
    stats = forward(lines, publish, period=60, clock=lambda: next(ticks))
    assert publish.periods == [[10.0], [20.0], [30.0]]
    assert (stats.published, stats.dropped) == (0, 3)


# --- CloudWatch ----------------------------------------------------------------------------


def test_publishes_into_the_fleet_namespace_with_the_group_dimension(cloudwatch: Any) -> None:
    assert Publisher(cloudwatch, ASG)([40.0, 80.0, 60.0])
    metrics = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert [(m["MetricName"], m["Dimensions"]) for m in metrics] == [
        (METRIC_NAME, [{"Name": DIMENSION, "Value": ASG}])
    ]
    [point] = _statistics(cloudwatch)
    assert point["Average"] == pytest.approx(60.0)
    assert (point["Maximum"], point["Minimum"], point["SampleCount"]) == (80.0, 40.0, 3.0)
    assert point["Unit"] == "Percent"


def test_high_resolution_stores_per_second() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert metric_datum([1.0], ASG, timestamp=at, high_resolution=True)["StorageResolution"] == 1
    assert metric_datum([1.0], ASG, timestamp=at, high_resolution=False)["StorageResolution"] == 60


class FlakyClient:
    """A CloudWatch client whose first ``failures`` calls are throttled."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if len(self.calls) <= self.failures:
            raise ClientError(
                {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "PutMetricData"
            )


def test_retries_cloudwatch_errors_with_backoff() -> None:
    client, sleeps = FlakyClient(failures=2), []
    assert Publisher(client, ASG, sleep=sleeps.append)([50.0])
    assert sleeps == [1.0, 2.0] and len(client.calls) == 3
    assert client.calls[0]["Namespace"] == NAMESPACE


def test_drops_the_period_when_cloudwatch_keeps_failing(caplog: pytest.LogCaptureFixture) -> None:
    client, sleeps = FlakyClient(failures=10), []
    assert not Publisher(client, ASG, sleep=sleeps.append)([50.0])
    assert sleeps == [1.0, 2.0, 4.0] and len(client.calls) == 4
    assert caplog.records[-1].getMessage() == (
        "dropped one period after 4 failed PutMetricData: An error occurred (Throttling) when "
        "calling the PutMetricData operation: Rate exceeded"
    )


def test_names_match_the_fleet_scaling_policy() -> None:
    """Read from the construct's source, so this test does not start the CDK (jsii)."""
    tree = ast.parse((REPO / "inf3kit/constructs/fleet_metrics.py").read_text())
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert constants["NEURON_METRIC_NAMESPACE"] == NAMESPACE
    assert constants["NEURONCORE_UTILIZATION_METRIC"] == METRIC_NAME


# --- neuron-monitor and the command --------------------------------------------------------


def test_forwards_what_the_monitor_command_prints(tmp_path: Path) -> None:
    reports = tmp_path / "reports.jsonl"
    reports.write_text(report(runtime(40.0, 80.0)) + "\n" + report() + "\n")
    publish = Recorder()
    stats, status = run_monitor(f"cat {reports}", publish, period=3600)
    assert status == 0 and stats.reports == 2 and publish.periods == [[60.0, 0.0]]


def test_fails_when_the_monitor_cannot_start() -> None:
    with pytest.raises(MonitorError) as info:
        run_monitor("/nonexistent/neuron-monitor -c x.conf", Recorder(), period=60)
    assert str(info.value) == (
        "cannot start '/nonexistent/neuron-monitor -c x.conf': No such file or directory. Fix: "
        "install the Neuron tools (aws-neuronx-tools; the DLAMI has them in /opt/aws/neuron/bin) "
        "or pass --monitor-cmd"
    )


def test_command_publishes_reports_from_stdin(cloudwatch: Any) -> None:
    lines = [report(runtime(40.0, 80.0)), "not a report", report(runtime(20.0)), report()]
    result = CliRunner().invoke(
        app,
        ["neuron-metrics", "--asg", ASG, "--region", REGION, "--stdin"],
        input="\n".join(lines) + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "3 report(s), 1 malformed, 1 period(s) published, 0 dropped" in result.output
    [point] = _statistics(cloudwatch)
    assert point["Average"] == pytest.approx(80.0 / 3)
    assert (point["Maximum"], point["SampleCount"]) == (60.0, 3.0)


def test_command_reads_the_group_from_the_environment(
    cloudwatch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INF3KIT_ASG_NAME", ASG)
    result = CliRunner().invoke(
        app, ["neuron-metrics", "--region", REGION, "--stdin"], input=report() + "\n"
    )
    assert result.exit_code == 0, result.output
    assert [p["Average"] for p in _statistics(cloudwatch)] == [0.0]


def test_fails_when_the_command_has_no_group() -> None:
    result = CliRunner().invoke(app, ["neuron-metrics", "--stdin"], input="")
    assert result.exit_code == 2
    assert "no Auto Scaling group. Fix: pass --asg NAME or set INF3KIT_ASG_NAME" in result.output


def test_imports_nothing_the_runtime_must_not() -> None:
    code = (
        "import sys, inf3kit.runtime.neuron_metrics\n"
        "bad = ('aws_cdk', 'constructs', 'inf3kit.stacks', 'inf3kit.constructs', 'inf3kit.spec',"
        " 'inf3kit.cli')\n"
        "print(','.join(m for m in bad if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
