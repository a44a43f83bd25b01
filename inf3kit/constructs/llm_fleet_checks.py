"""LlmFleet's prop checks: every problem with its fix, collected before any child exists."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aws_cdk import Token

from inf3kit.catalog import Catalog, Compatibility
from inf3kit.constructs.fleet_checks import instance_type_problems
from inf3kit.llm import LlmSettings, LlmWeights, ModelArchitecture
from inf3kit.llm.fit import engine_cores, fit_problems
from inf3kit.llm.settings import settings_problems
from inf3kit.rules import llm_server_layout_problems
from inf3kit.rules.weights import llm_weights_problems

MANAGED_VARIABLES = frozenset(
    {"NEURON_RT_VISIBLE_CORES", "INF3KIT_VLLM_PORT", "BASE_COMPILE_WORK_DIR", "HF_TOKEN"}
)
"""Per-server variables the boot sets (and the token it never hands to a server)."""
_ENV_NAME = re.compile(r"^(NEURON|VLLM|XLA|HF|PROMETHEUS)_[A-Z0-9_]+$")


def llm_fleet_problems(
    *,
    instance_types: Sequence[str],
    weights: LlmWeights,
    settings: LlmSettings,
    architecture: ModelArchitecture | None,
    port: int,
    extra_environment: Mapping[str, str],
    waiting_requests_per_instance: int | None,
    catalog: Catalog,
    compatibility: Compatibility,
) -> list[str]:
    problems = instance_type_problems(instance_types, catalog, compatibility)
    problems += llm_weights_problems(
        s3=weights.s3_prefix,
        huggingface=weights.huggingface_id,
        revision=weights.revision,
        token_secret=weights.token_secret,
        compiled=weights.compiled_prefix,
        prefix="weights.",
    )
    problems += settings_problems(settings)
    if not problems and not isinstance(instance_types, str):
        problems += _layout_problems(instance_types, settings, architecture, port, catalog)
    bad = sorted(k for k in extra_environment if k in MANAGED_VARIABLES or not _ENV_NAME.match(k))
    if bad:
        problems.append(
            f"extra_environment keys {', '.join(map(repr, bad))} cannot be set. Fix: use "
            "NEURON_*, VLLM_*, XLA_*, HF_* or PROMETHEUS_* variables other than "
            f"{', '.join(sorted(MANAGED_VARIABLES))}, which each server gets from the boot"
        )
    multiline = sorted(k for k, v in extra_environment.items() if "\n" in v or "\r" in v)
    if multiline:
        problems.append(
            f"extra_environment values of {', '.join(map(repr, multiline))} hold a line break, "
            "which would end the server's systemd unit line. Fix: one line per value"
        )
    if waiting_requests_per_instance is not None and waiting_requests_per_instance < 1:
        problems.append(
            f"waiting_requests_per_instance {waiting_requests_per_instance} must be >= 1. "
            "Fix: e.g. 4, or None to turn queue scaling off"
        )
    return problems


def _layout_problems(
    instance_types: Sequence[str],
    settings: LlmSettings,
    architecture: ModelArchitecture | None,
    port: int,
    catalog: Catalog,
) -> list[str]:
    """The degree tiles every type into the same number of servers within the load balancer's
    limit (the rule `inf3kit validate` applies too), the ports fit, and (given the
    architecture) the model fits each type's group."""
    cores = {
        n: engine_cores(catalog.get(n)).count for n in instance_types if not Token.is_unresolved(n)
    }
    problems = [
        f"settings.{p}" if p.startswith("tensor_parallel") else f"instance_types: {p}"
        for p in llm_server_layout_problems(cores, settings.tensor_parallel)
    ]
    if architecture is not None:
        for name in cores:
            problems += [
                f"instance_types: {p}"
                for p in fit_problems(architecture, settings, name, catalog=catalog)
            ]
    most = max((n // settings.tensor_parallel for n in cores.values()), default=1)
    if port + most - 1 > 65535:
        problems.append(
            f"port {port} leaves no room for {most} servers on consecutive ports. Fix: e.g. 8000"
        )
    return problems
