"""``inf3kit llm metrics``: publish the vLLM servers' queue for the LLM fleet's scaling policy.

An LLM fleet scales on what its servers report themselves: requests waiting for a sequence
slot (`vllm:num_requests_waiting`, a gauge on each vLLM server's Prometheus `/metrics`). This
module scrapes every server on the instance, adds their queues up, and publishes one
statistic set per period to CloudWatch (namespace `Inf3kit/LLM`, metric `RequestsWaiting`,
dimension AutoScalingGroupName) through the same `Publisher` as `inf3kit neuron-metrics`, so
the policy's `Average` is the instance's mean queue over the period.

The text format is parsed with prometheus_client's parser (a dependency of `inf3kit[serve]`,
and of vLLM), not by hand.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from inf3kit.runtime.neuron_metrics import Publish

log = logging.getLogger("inf3kit.llm_metrics")

NAMESPACE = "Inf3kit/LLM"
"""Equal to LlmFleet's LLM_METRIC_NAMESPACE (a test keeps them in step)."""
METRIC_NAME = "RequestsWaiting"
"""Equal to LlmFleet's REQUESTS_WAITING_METRIC."""
WAITING = "vllm:num_requests_waiting"
"""vLLM's gauge of requests waiting to be scheduled (vLLM docs, "Production Metrics")."""


class ScrapeError(RuntimeError):
    """A server's /metrics could not be read or holds no queue gauge."""


def waiting_requests(text: str) -> float:
    """The queue a /metrics page reports: the sum of `vllm:num_requests_waiting` over its
    label sets (one per served model)."""
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise ScrapeError(f"not the Prometheus text format ({exc})") from None
    values = [
        sample.value
        for family in families
        if family.name == WAITING
        for sample in family.samples
        if sample.name == WAITING
    ]
    if not values:
        raise ScrapeError(f"no {WAITING} gauge (is this a vLLM server?)")
    return float(sum(values))


def scrape(port: int, *, host: str = "127.0.0.1", timeout: float = 5.0) -> float:
    """One server's queue, read from its /metrics."""
    url = f"http://{host}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise ScrapeError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ScrapeError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    try:
        return waiting_requests(text)
    except ScrapeError as exc:
        raise ScrapeError(f"{url}: {exc}") from None


def instance_queue(ports: Sequence[int], read: Callable[[int], float] = scrape) -> float | None:
    """The instance's queue: the sum over the servers that answered.

    A server that does not answer is logged and left out; when none answers the result is
    None, since nothing is known (a down instance is not an idle one: its health check takes it
    out of service instead).
    """
    total, answered = 0.0, 0
    for port in ports:
        try:
            total += read(port)
            answered += 1
        except ScrapeError as exc:
            log.warning("skipped a server: %s", exc)
    return total if answered else None


@dataclass
class Stats:
    """What the loop did, for its log line and for tests."""

    scrapes: int = 0
    unknown: int = 0
    published: int = 0
    dropped: int = 0


def run(
    ports: Sequence[int],
    publish: Publish,
    *,
    period: float = 60.0,
    interval: float = 10.0,
    periods: int | None = None,
    read: Callable[[int], float] = scrape,
    sleep: Callable[[float], None] = time.sleep,
) -> Stats:
    """Sample every `interval` seconds and publish each `period`'s samples, `periods` times
    (None: until stopped)."""
    stats = Stats()
    per_period = max(1, round(period / interval))
    done = 0
    while periods is None or done < periods:
        window = []
        for n in range(per_period):
            if n:
                sleep(interval)
            stats.scrapes += 1
            value = instance_queue(ports, read)
            if value is None:
                stats.unknown += 1
            else:
                window.append(value)
        if window:
            if publish(window):
                stats.published += 1
            else:
                stats.dropped += 1
        done += 1
        if periods is None or done < periods:
            sleep(interval)
    return stats


def parse_ports(value: str) -> list[int]:
    """`8000,8001` -> [8000, 8001]; a clear error for anything else."""
    try:
        ports = [int(p) for p in value.split(",") if p.strip()]
    except ValueError:
        ports = []
    if not ports or any(not 1 <= p <= 65535 for p in ports):
        raise ValueError(
            f"--ports {value!r} is not a list of ports. Fix: e.g. --ports 8000,8001 (the vLLM "
            "servers of this instance)"
        )
    return ports
