"""The `monitoring:` section: the service's CloudWatch dashboard and on-call alarms."""

from __future__ import annotations

from pydantic import Field, field_validator

from inf3kit.rules import email_problems, percent_problems
from inf3kit.spec.base import StrictModel, raise_problems


class MonitoringSpec(StrictModel):
    dashboard: bool = True
    """Create the CloudWatch dashboard; the alarms exist either way."""
    alarm_email: str | None = None
    """Subscribe this address to the alarm topic. None: subscribe your pager to the topic."""
    latency_p99_ms: int | None = Field(None, ge=1, le=600_000)
    """p99 latency alarm threshold. None: the construct's 1 s, below the request deadline (at
    the deadline the runtime answers 504, so a threshold there could never be crossed)."""
    error_rate_percent: float = 1
    """5xx share of requests that raises an alarm."""
    unhealthy_hosts_minutes: int | None = Field(None, ge=1, le=1440)
    """How long a fleet target may fail readiness before an alarm. None: the fleet's startup
    timeout (`startup_minutes`, or its estimate) plus 5."""

    @field_validator("alarm_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None:
            raise_problems(email_problems(value))
        return value

    @field_validator("error_rate_percent")
    @classmethod
    def _percent(cls, value: float) -> float:
        raise_problems(percent_problems(value))
        return value
