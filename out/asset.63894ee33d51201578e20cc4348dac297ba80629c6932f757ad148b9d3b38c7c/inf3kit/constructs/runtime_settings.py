"""RuntimeSettings: the serving runtime's tuning, typed, shared by endpoints and fleets."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Token

RUNTIME_VARIABLES = (
    "INF3KIT_MAX_BATCH_SIZE",
    "INF3KIT_MAX_DELAY_MS",
    "INF3KIT_QUEUE_SIZE",
    "INF3KIT_REQUEST_TIMEOUT_MS",
    "INF3KIT_MAX_BODY_BYTES",
)
"""The variables RuntimeSettings sets, as inf3kit/runtime/settings.py reads them."""


@dataclass(frozen=True)
class RuntimeSettings:
    """Batching, back-pressure and limits of `inf3kit serve`, as construct props.

    Each set field becomes the `INF3KIT_*` variable the runtime reads (docs/runtime.md), so
    NeuronEndpoint and NeuronFleet spell the names in one place; an unset field leaves the
    runtime's own default.
    """

    max_batch_size: int | None = None
    """INF3KIT_MAX_BATCH_SIZE. Default: the bundle's largest compiled batch size."""
    max_delay: Duration | None = None
    """INF3KIT_MAX_DELAY_MS, how long a batch waits to fill (whole milliseconds)."""
    queue_size: int | None = None
    """INF3KIT_QUEUE_SIZE, requests queued before the runtime answers 429."""
    request_timeout: Duration | None = None
    """INF3KIT_REQUEST_TIMEOUT_MS, the per-request deadline (504 after it)."""
    max_body_bytes: int | None = None
    """INF3KIT_MAX_BODY_BYTES, larger bodies get 413."""

    def problems(self) -> list[str]:
        """Every value the runtime would refuse at startup; unresolved tokens are skipped."""
        problems = []
        for name, low in (("max_batch_size", 1), ("queue_size", 1), ("max_body_bytes", 1024)):
            value = getattr(self, name)
            if value is not None and not Token.is_unresolved(value) and value < low:
                problems.append(
                    f"runtime.{name}: got {value}, must be >= {low}. "
                    f"Fix: use {low} or more, or leave it unset"
                )
        for name, low in (("max_delay", 0), ("request_timeout", 1)):
            duration: Duration | None = getattr(self, name)
            if duration is None or duration.is_unresolved():
                continue
            ms = duration.to_milliseconds(integral=False)
            if ms < low or ms != int(ms):
                problems.append(
                    f"runtime.{name}: got {ms:g} ms, must be a whole number of milliseconds "
                    f">= {low}. Fix: use Duration.millis(n) with a whole n >= {low}, or leave it "
                    "unset"
                )
        return problems

    def environment(self) -> dict[str, str]:
        """The runtime's variables for the set fields, durations in whole milliseconds."""
        values = (
            self.max_batch_size,
            _ms(self.max_delay),
            self.queue_size,
            _ms(self.request_timeout),
            self.max_body_bytes,
        )
        return {
            name: _text(value)
            for name, value in zip(RUNTIME_VARIABLES, values, strict=True)
            if value is not None
        }


def _ms(value: Duration | None) -> float | None:
    if value is None:
        return None
    if value.is_unresolved():
        return value.to_milliseconds()  # a token converts only from milliseconds
    return int(value.to_milliseconds(integral=False))


def _text(value: float) -> str:
    return Token.as_string(value) if Token.is_unresolved(value) else str(int(value))
