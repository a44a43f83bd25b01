"""Plain value rules: ordered capacities, ranges, percentages, e-mail addresses."""

from __future__ import annotations

import re

# A pragmatic address check (pydantic's EmailStr would pull in email-validator); SNS sends a
# confirmation mail, which is the real test.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def capacity_problems(
    low: int,
    high: int,
    start: int | None = None,
    *,
    names: tuple[str, str, str] = ("min", "max", "desired"),
) -> list[str]:
    """min <= max, and a start count (desired, initial) inside min..max; `names` as the caller
    spells its fields."""
    min_name, max_name, start_name = names
    if low > high:
        return [
            f"{min_name} ({low}) is greater than {max_name} ({high}). Fix: set {min_name} <= "
            f"{max_name}, e.g. {min_name} {high} or {max_name} {low}"
        ]
    if start is not None and not low <= start <= high:
        return [
            f"{start_name} ({start}) is outside {min_name}..{max_name} ({low}..{high}). "
            f"Fix: choose a count within the range, or leave {start_name} unset"
        ]
    return []


def percent_problems(value: float) -> list[str]:
    """A share of requests: above 0, at most 100."""
    if 0 < value <= 100:
        return []
    return [
        f"got {value:g}, must be above 0 and at most 100. "
        "Fix: use a percentage of requests such as 1"
    ]


def email_problems(value: str) -> list[str]:
    if _EMAIL.match(value):
        return []
    return [f"got {value!r}, not an email address. Fix: use an address such as oncall@example.com"]


def scale_down_count_problems(count: int, high: int, *, max_name: str) -> list[str]:
    """A scheduled low capacity between 1 and the maximum the scaling may reach."""
    if 1 <= count <= high:
        return []
    return [f"got {count}, outside 1..{high} ({max_name}). Fix: use a count in that range"]
