"""`inf3kit llm metrics`: vLLM's queue gauge scraped from real local HTTP servers serving
Prometheus text pages shaped like vLLM's, summed per instance and published into moto's
CloudWatch, then read back."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.runtime.llm_metrics import (
    METRIC_NAME,
    NAMESPACE,
    ScrapeError,
    instance_queue,
    parse_ports,
    run,
    scrape,
    waiting_requests,
)

REPO = Path(__file__).resolve().parents[2]
ASG = "llm-fleet-FleetASG"
REGION = "eu-west-1"


def vllm_page(waiting: float, running: float = 8.0, model: str = "llama") -> str:
    """A /metrics page as vLLM writes it (prometheus_client text format, labelled gauges)."""
    return (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f'vllm:num_requests_running{{engine="0",model_name="{model}"}} {running}\n'
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        f'vllm:num_requests_waiting{{engine="0",model_name="{model}"}} {waiting}\n'
        "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n"
        "# TYPE vllm:prompt_tokens_total counter\n"
        f'vllm:prompt_tokens_total{{engine="0",model_name="{model}"}} 12345.0\n'
    )


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, status = self.server.page, 200  # type: ignore[attr-defined]
        if self.path != "/metrics":
            body, status = "not found", 404
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    """Two vLLM-like servers on real sockets (ports chosen by the OS)."""
    started = []
    for waiting in (3.0, 1.0):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        server.page = vllm_page(waiting)  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def _port(server: ThreadingHTTPServer) -> int:
    return int(server.server_address[1])


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
            Dimensions=[{"Name": "AutoScalingGroupName", "Value": ASG}],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=10),
            Period=3600,
            Statistics=["Average", "Maximum", "SampleCount"],
        )["Datapoints"]
    )


def test_the_names_match_what_the_fleet_scales_on() -> None:
    """Read from the construct's source, so this test does not start the CDK (jsii)."""
    tree = ast.parse((REPO / "inf3kit/constructs/llm_servers.py").read_text())
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert constants["LLM_METRIC_NAMESPACE"] == NAMESPACE
    assert constants["REQUESTS_WAITING_METRIC"] == METRIC_NAME


def test_the_queue_is_the_sum_over_the_served_models() -> None:
    page = vllm_page(2.0) + vllm_page(5.0, model="lora-a").split("\n", 2)[2]
    assert waiting_requests(vllm_page(2.0)) == 2.0
    assert waiting_requests(page.replace("# HELP vllm:num_requests_running", "# X")) == 7.0


def test_fails_when_the_page_has_no_queue_gauge_or_is_not_prometheus_text() -> None:
    with pytest.raises(ScrapeError, match="no vllm:num_requests_waiting gauge"):
        waiting_requests("# TYPE other gauge\nother 1\n")
    with pytest.raises(ScrapeError, match="not the Prometheus text format"):
        waiting_requests("vllm:num_requests_waiting{ 3\n")


def test_scrapes_each_server_over_its_socket_and_sums_the_instance(
    servers: list[ThreadingHTTPServer],
) -> None:
    ports = [_port(s) for s in servers]
    assert [scrape(p) for p in ports] == [3.0, 1.0]
    assert instance_queue(ports) == 4.0


def test_a_silent_server_is_left_out_and_none_answering_is_unknown(
    servers: list[ThreadingHTTPServer],
) -> None:
    live = _port(servers[0])
    servers[1].shutdown()
    servers[1].server_close()
    dead = _port(servers[1])
    with pytest.raises(ScrapeError, match=f"http://127.0.0.1:{dead}/metrics"):
        scrape(dead)
    assert instance_queue([live, dead]) == 3.0
    assert instance_queue([dead]) is None


def test_each_period_publishes_its_samples_as_one_statistic_set() -> None:
    sent: list[list[float]] = []
    queues = iter([4.0, 6.0, 2.0, 0.0])

    def publish(samples: list[float]) -> bool:
        sent.append(list(samples))
        return True

    stats = run(
        [8000],
        publish,  # type: ignore[arg-type]
        period=20,
        interval=10,
        periods=2,
        read=lambda port: next(queues),
        sleep=lambda seconds: None,
    )
    assert sent == [[4.0, 6.0], [2.0, 0.0]]
    assert (stats.scrapes, stats.published, stats.unknown) == (4, 2, 0)


def test_command_publishes_the_instance_queue_to_cloudwatch(
    servers: list[ThreadingHTTPServer], cloudwatch: Any
) -> None:
    ports = ",".join(str(_port(s)) for s in servers)
    result = CliRunner().invoke(
        app,
        [
            *("llm", "metrics", "--ports", ports, "--asg", ASG, "--region", REGION),
            *("--period", "1", "--interval", "1", "--periods", "1"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 scrape(s), 0 with no server answering, 1 period(s) published" in result.output
    [point] = _statistics(cloudwatch)
    assert (point["Average"], point["SampleCount"]) == (4.0, 1.0)


def test_fails_when_the_ports_are_not_a_list_of_ports() -> None:
    with pytest.raises(ValueError, match=r"Fix: e\.g\. --ports 8000,8001"):
        parse_ports("8000,http")
    result = CliRunner().invoke(app, ["llm", "metrics", "--ports", "0", "--asg", ASG])
    assert result.exit_code == 2
    assert "--ports '0' is not a list of ports" in result.output
