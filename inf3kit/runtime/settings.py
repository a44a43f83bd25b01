"""Server settings from ``INF3KIT_*`` environment variables (docs/runtime.md has the table).

Environment variables are how SageMaker and the fleet's systemd unit configure a container;
CLI flags override them. Every bad value is reported with the variable or flag it came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Resolved runtime settings; field ``x`` is read from ``INF3KIT_X``."""

    model_dir: str = "/opt/ml/model"
    host: str = "0.0.0.0"
    port: int = 8080
    target: str | None = None
    max_batch_size: int | None = None
    max_delay_ms: float = 2.0
    queue_size: int = 1024
    workers: int = 1
    torch_threads: int | None = None
    neuron_cores: int | None = None
    request_timeout_ms: float = 30_000.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_bundle_bytes: int = 128 << 30
    max_bundle_members: int = 10_000
    grace_seconds: float = 20.0
    log_level: str = "info"
    access_log: bool = False
    simulated_device_ms: float | None = None
    max_header_bytes: int = 16 * 1024
    max_header_count: int = 100
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keepalive_timeout_seconds: float = 75.0
    max_connections: int = 2048
    processes: int | None = None
    grpc_port: int | None = None

    def with_overrides(self, **overrides: Any) -> Settings:
        """Apply non-``None`` overrides (CLI flags) on top of the environment."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _int(value: str) -> int:
    return int(value)


def _float(value: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


LOG_LEVELS: dict[str, int] = {
    "critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5,
}  # fmt: skip
"""The accepted levels with their :mod:`logging` numbers (``trace`` is 5, below ``debug``)."""


def _log_level(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return lowered


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "port": _int,
    "max_batch_size": _int,
    "max_delay_ms": _float,
    "queue_size": _int,
    "workers": _int,
    "torch_threads": _int,
    "neuron_cores": _int,
    "request_timeout_ms": _float,
    "max_body_bytes": _int,
    "max_bundle_bytes": _int,
    "max_bundle_members": _int,
    "grace_seconds": _float,
    "log_level": _log_level,
    "access_log": _bool,
    "simulated_device_ms": _float,
    "max_header_bytes": _int,
    "max_header_count": _int,
    "header_timeout_seconds": _float,
    "body_timeout_seconds": _float,
    "keepalive_timeout_seconds": _float,
    "max_connections": _int,
    "processes": _int,
    "grpc_port": _int,
}

_MINIMUM: dict[str, float] = {
    "port": 0,
    "max_batch_size": 1,
    "max_delay_ms": 0,
    "queue_size": 1,
    "workers": 1,
    "torch_threads": 1,
    "neuron_cores": 1,
    "request_timeout_ms": 1,
    "max_body_bytes": 1024,
    "max_bundle_bytes": 1,
    "max_bundle_members": 1,
    "grace_seconds": 0,
    "simulated_device_ms": 0,
    "max_header_bytes": 1024,
    "max_header_count": 8,
    "header_timeout_seconds": 0.1,
    "body_timeout_seconds": 0.1,
    "keepalive_timeout_seconds": 0.1,
    "max_connections": 1,
    "processes": 1,
    "grpc_port": 1,
}


_MS_MAXIMUM = 3_600_000  # an hour: beyond it a delay or deadline is a typo, and huge
# values overflow the thread waits they feed (threading.Condition.wait)
_MAXIMUM: dict[str, int] = {
    "max_delay_ms": _MS_MAXIMUM,
    "request_timeout_ms": _MS_MAXIMUM,
    "grace_seconds": 3600,
    "simulated_device_ms": _MS_MAXIMUM,
    "max_header_bytes": 1024 * 1024,
    "max_header_count": 10_000,
    "header_timeout_seconds": 3600,
    "body_timeout_seconds": 3600,
    "keepalive_timeout_seconds": 3600,
    "max_connections": 1_000_000,
    "processes": 1024,
    "grpc_port": 65535,
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``), then apply CLI ``overrides``.

    The port comes from ``--port``, else ``SAGEMAKER_BIND_TO_PORT`` (SageMaker's instruction
    wins over the image's own default), else ``INF3KIT_PORT``, else 8080. A problem names where
    the bad value came from: the flag (``--queue-size=0``) or the variable (``INF3KIT_...=0``).
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    problems = []
    for f in fields(Settings):
        var = f"INF3KIT_{f.name.upper()}"
        raw = env.get(var)
        if f.name == "port" and env.get("SAGEMAKER_BIND_TO_PORT"):
            var, raw = "SAGEMAKER_BIND_TO_PORT", env["SAGEMAKER_BIND_TO_PORT"]
        source[f.name] = var
        if overrides.get(f.name) is not None:
            source[f.name] = _flag(f.name)
            continue  # the flag wins: a bad environment value it replaces does not matter
        if raw is None or raw == "":
            continue
        try:
            value = _PARSERS.get(f.name, str)(raw)
        except ValueError as exc:
            problems.append(f"{var}={raw!r}: not a valid {f.name.replace('_', ' ')} ({exc})")
            continue
        values[f.name] = value
    settings = Settings(**values).with_overrides(**overrides)
    for name, low in _MINIMUM.items():
        value = getattr(settings, name)
        if value is None:
            continue
        high = _MAXIMUM.get(name)
        if isinstance(value, float) and not math.isfinite(value):  # a flag; env is parsed
            problems.append(f"{source[name]}={value!r}: must be a finite number")
        elif value < low:
            problems.append(f"{source[name]}={value!r}: must be >= {low:g}")
        elif high is not None and value > high:
            problems.append(f"{source[name]}={value!r}: must be <= {high}")
    if settings.port > 65535:
        problems.append(f"{source['port']}={settings.port!r}: must be <= 65535")
    if settings.log_level not in LOG_LEVELS:  # a programmatic override; env is parsed
        problems.append(
            f"{source['log_level']}={settings.log_level!r}: must be one of {', '.join(LOG_LEVELS)}"
        )
    if problems:
        raise ValueError("invalid runtime settings:\n  - " + "\n  - ".join(problems))
    return settings
