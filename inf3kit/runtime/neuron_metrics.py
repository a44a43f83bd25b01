"""``inf3kit neuron-metrics``: publish NeuronCore utilisation for the fleet's scaling policy.

NeuronFleet scales on a custom CloudWatch metric that nothing in AWS publishes by itself. This
module reads the report stream of ``neuron-monitor`` (part of the Neuron tools on the DLAMI),
reduces each report to the mean utilisation of the NeuronCores in use, and publishes one
statistic set per period with ``PutMetricData``, so the policy's ``Average`` is the mean over
the period and ``Maximum`` the busiest report.

The report format is the one in AWS's Neuron Monitor User Guide, sections "The JSON output
format" and "neuroncore_counters"
(https://awsdocs-neuron.readthedocs-hosted.com/en/latest/tools/neuron-sys-tools/neuron-monitor-user-guide.html,
source ``tools/neuron-sys-tools/neuron-monitor-user-guide.rst`` in aws-neuron/aws-neuron-sdk):
one complete JSON document per line whenever a metric group updates (every 5 s without a
configuration file), with ``neuron_runtime_data[].report.neuroncore_counters.neuroncores_in_use
.{core index}.neuroncore_utilization`` in percent over the captured period.

Parsing is a pure function; the stream loop takes a ``publish`` callable and a clock, so both are
testable without neuron-monitor, an instance or an AWS account.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("inf3kit.neuron_metrics")

NAMESPACE = "Inf3kit/Neuron"
"""Equal to NeuronFleet's NEURON_METRIC_NAMESPACE (a test keeps them in step)."""
METRIC_NAME = "NeuronCoreUtilization"
"""Equal to NeuronFleet's NEURONCORE_UTILIZATION_METRIC."""
DIMENSION = "AutoScalingGroupName"
ASG_ENV = "INF3KIT_ASG_NAME"
ASG_TAG = "aws:autoscaling:groupName"
"""The tag Auto Scaling puts on its instances; readable from instance metadata tags."""
SERVICE_NAME = "inf3kit-neuron-metrics"
MONITOR_FIX = (
    "Fix: install the Neuron tools (aws-neuronx-tools; the DLAMI has them in "
    "/opt/aws/neuron/bin) or pass --monitor-cmd"
)

Publish = Callable[[Sequence[float]], bool]
"""``publish(samples)`` sends one period's samples; False when CloudWatch kept failing."""


class ReportError(ValueError):
    """A line that is not a usable neuron-monitor report; the loop counts and skips it."""


class MonitorError(RuntimeError):
    """neuron-monitor could not start; the message names the command and the fix."""


def parse_report(line: str) -> float | None:
    """Mean utilisation (percent) of the NeuronCores in use in one report.

    No runtime attached gives 0.0: an idle instance must pull the group's average down so the
    group scales in. Runtimes that all failed to report NeuronCore counters give None: that is
    not knowledge of idleness, so nothing is published for that report.
    """
    try:
        report = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReportError(f"not JSON ({exc.msg} at offset {exc.pos})") from None
    if not isinstance(report, dict):
        raise ReportError(f"a JSON {type(report).__name__}, not a report object")
    runtimes = report.get("neuron_runtime_data")
    if not isinstance(runtimes, list):
        raise ReportError(
            "no neuron_runtime_data list; run neuron-monitor with the neuroncore_counters group"
        )
    if not runtimes:
        return 0.0
    values: list[float] = []
    reported = False
    for runtime in runtimes:
        counters = _neuroncore_counters(runtime)
        if counters is not None:
            reported = True
            values.extend(_utilisations(counters))
    if not reported:
        return None
    return sum(values) / len(values) if values else 0.0


def _neuroncore_counters(runtime: object) -> dict[str, Any] | None:
    """The runtime's neuroncore_counters group, or None when it carries an error or is absent."""
    if not isinstance(runtime, dict):
        raise ReportError("a neuron_runtime_data entry is not an object")
    report = runtime.get("report")
    counters = report.get("neuroncore_counters") if isinstance(report, dict) else None
    if runtime.get("error") or not isinstance(counters, dict) or counters.get("error"):
        return None
    return counters


def _utilisations(counters: dict[str, Any]) -> list[float]:
    cores = counters.get("neuroncores_in_use", {})
    if not isinstance(cores, dict):
        raise ReportError("neuroncores_in_use is not an object")
    values = []
    for index, core in cores.items():
        value = core.get("neuroncore_utilization") if isinstance(core, dict) else None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and value >= 0)
        ):
            raise ReportError(
                f"NeuronCore {index}: neuroncore_utilization {value!r} is not a percentage"
            )
        values.append(float(value))
    return values


def metric_datum(
    samples: Sequence[float],
    asg_name: str,
    *,
    timestamp: datetime,
    high_resolution: bool,
    metric_name: str = METRIC_NAME,
    unit: str = "Percent",
) -> dict[str, Any]:
    """One period as a statistic set: a single datum however many reports the period had."""
    return {
        "MetricName": metric_name,
        "Dimensions": [{"Name": DIMENSION, "Value": asg_name}],
        "Timestamp": timestamp,
        "StatisticValues": {
            "SampleCount": float(len(samples)),
            "Sum": sum(samples),
            "Minimum": min(samples),
            "Maximum": max(samples),
        },
        "Unit": unit,
        "StorageResolution": 1 if high_resolution else 60,
    }


# Equal to datetime.timezone.utc; spelled this way because datetime.UTC is Python 3.11+ (this
# module runs on 3.10 too) and ruff's pyupgrade would rewrite timezone.utc to it.
_UTC = timezone(timedelta(0))


def _utcnow() -> datetime:
    return datetime.now(_UTC)


@dataclass
class Publisher:
    """Sends one period to CloudWatch; errors are retried with exponential backoff, then the
    period is dropped with a log line, so a CloudWatch outage never stops the loop.

    The NeuronCore utilisation by default; `inf3kit llm metrics` publishes its queue metric
    through the same class."""

    client: Any
    asg_name: str
    high_resolution: bool = False
    namespace: str = NAMESPACE
    metric_name: str = METRIC_NAME
    unit: str = "Percent"
    attempts: int = 4
    backoff: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = _utcnow

    def __call__(self, samples: Sequence[float]) -> bool:
        datum = metric_datum(
            samples,
            self.asg_name,
            timestamp=self.now(),
            high_resolution=self.high_resolution,
            metric_name=self.metric_name,
            unit=self.unit,
        )
        attempt = 1
        while True:
            try:
                self.client.put_metric_data(Namespace=self.namespace, MetricData=[datum])
                return True
            except (BotoCoreError, ClientError) as exc:
                if attempt >= self.attempts:
                    log.error("dropped one period after %d failed PutMetricData: %s", attempt, exc)
                    return False
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning("PutMetricData failed (%s); retry %d in %g s", exc, attempt, delay)
                self.sleep(delay)
                attempt += 1


@dataclass
class Stats:
    """What the loop did, for its exit log line and for tests."""

    reports: int = 0
    malformed: int = 0
    published: int = 0
    dropped: int = 0


def forward(
    lines: Iterable[str],
    publish: Publish,
    *,
    period: float,
    clock: Callable[[], float] = time.monotonic,
) -> Stats:
    """Publish the reports of each period until the stream ends, then the partial last period.

    A period closes when a report arrives after ``period`` seconds: neuron-monitor reports every
    few seconds, so no timer thread is needed.
    """
    stats = Stats()
    window: list[float] = []
    started = clock()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = parse_report(line)
        except ReportError as exc:
            stats.malformed += 1
            log.warning("skipped line %d (%s): %.80s", number, exc, line.strip())
            continue
        stats.reports += 1
        if value is not None:
            window.append(value)
        if clock() - started >= period:
            _flush(window, publish, stats)
            window, started = [], clock()
    _flush(window, publish, stats)
    return stats


def _flush(window: list[float], publish: Publish, stats: Stats) -> None:
    if not window:
        return
    if publish(window):
        stats.published += 1
    else:
        stats.dropped += 1


def run_monitor(command: str, publish: Publish, *, period: float) -> tuple[Stats, int]:
    """Forward the reports of ``command`` (neuron-monitor) until it exits; return its status."""
    argv = shlex.split(command)
    if not argv:
        raise MonitorError(f"the monitor command is empty. {MONITOR_FIX}")
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    except OSError as exc:
        raise MonitorError(f"cannot start {command!r}: {exc.strerror}. {MONITOR_FIX}") from None
    with proc:
        try:
            stats = forward(proc.stdout or (), publish, period=period)
        except BaseException:
            proc.terminate()
            raise
    return stats, proc.returncode


def cloudwatch_client(region: str | None) -> Any:
    import boto3

    return boto3.client("cloudwatch", region_name=region)
