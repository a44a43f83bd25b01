"""Schedule expressions and time zones, as the AWS services that run them accept them."""

from __future__ import annotations

import re
import zoneinfo

_RATE = re.compile(r"^rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")
CRON_EXAMPLE = "cron(0 20 ? * MON-FRI *)"
IMAGE_BUILD_SCHEDULE = "cron(0 4 ? * mon *)"
"""Weekly, Monday 04:00 UTC: the AMI pipeline's default rebuild."""


def cron_problems(expr: str, example: str = CRON_EXAMPLE) -> list[str]:
    """An AWS cron expression: `cron(Minutes Hours Day-of-month Month Day-of-week Year)`.

    Application Auto Scaling ("Scheduled scaling", cron expressions) and EC2 Image Builder
    ("Use cron expressions in Image Builder") take six fields, and one of day-of-month and
    day-of-week must be `?`.
    """
    if not (expr.startswith("cron(") and expr.endswith(")")):
        return [
            f"got {expr!r}, not a cron expression. Fix: write cron(MIN HOUR DAY MONTH WEEKDAY "
            f"YEAR), e.g. {example!r}"
        ]
    fields = expr[5:-1].split()
    if len(fields) != 6:
        return [
            f"got {expr!r} with {len(fields)} fields; AWS cron takes 6 (minutes hours "
            f"day-of-month month day-of-week year). Fix: e.g. {example!r}"
        ]
    if "?" not in (fields[2], fields[4]):
        return [
            f"got {expr!r}; AWS cron needs '?' in day-of-month or day-of-week (one of them). "
            f"Fix: e.g. {example!r}"
        ]
    return []


def scaling_schedule_problems(expr: str) -> list[str]:
    """Application Auto Scaling scheduled actions take cron(...), rate(...) or at(...)."""
    if _RATE.match(expr) or _AT.match(expr):
        return []
    if expr.startswith(("rate(", "at(")):
        return [
            f"got {expr!r}, not a rate(VALUE UNIT) or at(yyyy-mm-ddThh:mm:ss) expression. "
            "Fix: e.g. 'rate(1 day)' or 'at(2027-01-01T20:00:00)'"
        ]
    return cron_problems(expr)


def time_zone_problems(zone: str) -> list[str]:
    """An IANA time zone name, as scheduled actions take it (e.g. 'Europe/Berlin')."""
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [
            f"got {zone!r}, not an IANA time zone. Fix: use a name such as 'Europe/Berlin' or "
            "'America/New_York', or UTC"
        ]
    return []
