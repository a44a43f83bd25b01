"""An LLM fleet instance's boot script: weights, one vLLM server per tensor-parallel group,
health, then the CloudFormation signal.

Rendered as bash under `set -euo pipefail` with the fleets' ERR trap (fleet_user_data), so any
failing command signals FAILURE at once; the steps that can fail for a known reason call
`fail`, which logs the reason (journal and console, `logger -s`) before signalling, since
SignalResource carries no reason. The signal is SUCCESS only once every server answers its
health route. tests/constructs/test_llm_boot.py runs the script under bash with stand-ins for
pip, the AWS CLI, systemd and the vLLM server.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Aws

from inf3kit.constructs.llm_servers import COMPILED_DIR, MODEL_DIR, Server
from inf3kit.constructs.runtime_install import INSTALL_DIR
from inf3kit.llm import LlmSettings, LlmWeights

UNIT_DIR = "/etc/systemd/system"
ENV_DIR = "/etc/inf3kit"
VLLM_LINK = f"{INSTALL_DIR}/vllm"
"""A link to the vLLM environment found at boot, so the unit names a fixed path."""
SERVER_UNIT = "inf3kit-vllm"
"""A systemd template unit: `inf3kit-vllm@0.service` is server 0."""
METRICS_UNIT = "inf3kit-llm-metrics"
POLL_SECONDS = 5
HF_DOWNLOAD = (
    "import sys; from huggingface_hub import snapshot_download; "
    "snapshot_download(repo_id=sys.argv[1], revision=sys.argv[2], local_dir=sys.argv[3])"
)
"""huggingface_hub's Python API (a vLLM dependency in the vLLM environment): stable across the
CLI's renames, and it reads the token from HF_TOKEN."""


@dataclass(frozen=True)
class BootPlan:
    """Everything the boot script needs, already validated by the construct."""

    servers: Sequence[Server]
    weights: LlmWeights
    settings: LlmSettings
    vllm_environment: str
    vllm_arguments: Sequence[str]
    """`vllm serve ...` arguments with `${INF3KIT_VLLM_PORT}` for the port."""
    environment: Mapping[str, str]
    drain_seconds: int
    ready_seconds: int
    signal_success: str
    signal_failure: str


def boot_commands(plan: BootPlan) -> list[str]:
    """The shell lines after the runtime install; the caller puts the ERR trap first."""
    region = Aws.REGION
    return [
        f'fail() {{ logger -s -t inf3kit "$1"; {plan.signal_failure} || true; exit 1; }}',
        *_find_vllm(plan.vllm_environment),
        *_weights(plan.weights, region),
        *_check_compiled(plan),
        *_units(plan),
        *_start_and_wait(plan),
        f"systemctl start {METRICS_UNIT}.service",
        plan.signal_success,
    ]


def _find_vllm(pattern: str) -> list[str]:
    fix = (
        "Fix: boot the Neuron multi-framework DLAMI (Ubuntu 24.04), or pass "
        "vllm_environment= the path of a virtual environment with vLLM for Neuron"
    )
    return [
        f"shopt -s nullglob; found=({pattern}); shopt -u nullglob",
        f'[ "${{#found[@]}}" -gt 0 ] || fail "no vLLM environment matches {pattern}. {fix}"',
        "vllm_env=$(printf '%s\\n' \"${found[@]}\" | sort -V | tail -n 1)",
        f'[ -x "$vllm_env/bin/vllm" ] || fail "$vllm_env has no bin/vllm. {fix}"',
        f'ln -sfn "$vllm_env" {VLLM_LINK}',
        'logger -s -t inf3kit "vLLM environment: $vllm_env"',
    ]


def _weights(weights: LlmWeights, region: str) -> list[str]:
    sync = "--only-show-errors --region " + region
    lines = [f"mkdir -p {MODEL_DIR}"]
    if weights.s3_prefix is not None:
        lines.append(f"aws s3 sync {shlex.quote(weights.s3_prefix)} {MODEL_DIR} {sync}")
    else:
        download = [
            f"{VLLM_LINK}/bin/python",
            "-c",
            HF_DOWNLOAD,
            weights.huggingface_id or "",
            weights.revision or "",
            MODEL_DIR,
        ]
        command = " ".join(map(shlex.quote, download))
        if weights.token_secret is not None:
            # The token lives in this shell and the download's environment only: never in the
            # template, a file or the servers' environment.
            lines += [
                f"hf_token=$(aws secretsmanager get-secret-value --secret-id "
                f"{shlex.quote(weights.token_secret)} --query SecretString --output text "
                f"--region {region})",
                f'HF_TOKEN="$hf_token" {command}',
                "unset hf_token",
            ]
        else:
            lines.append(command)
    if weights.compiled_prefix is not None:
        lines += [
            f"mkdir -p {COMPILED_DIR}",
            f"aws s3 sync {shlex.quote(weights.compiled_prefix)} {COMPILED_DIR} {sync}",
        ]
    return lines


def _check_compiled(plan: BootPlan) -> list[str]:
    """Artefacts compiled for another degree or shape would load without a recompile (NxD
    Inference ignores the difference) and misbehave: refuse them before any server starts."""
    if plan.weights.compiled_prefix is None:
        return []
    settings = plan.settings
    check = [
        f"{INSTALL_DIR}/venv/bin/inf3kit",
        *("llm", "check-compiled", COMPILED_DIR),
        *("--tensor-parallel", str(settings.tensor_parallel)),
        *("--max-model-len", str(settings.max_model_len)),
        *("--max-num-seqs", str(settings.max_num_seqs)),
        *("--dtype", settings.dtype),
    ]
    return [f'checked=$({" ".join(check)} 2>&1) || fail "{plan.weights.compiled_prefix}: $checked"']


def _server_unit(plan: BootPlan) -> str:
    exec_start = " ".join(
        [f"{VLLM_LINK}/bin/vllm", *(_systemd_word(a) for a in plan.vllm_arguments)]
    )
    environment = "\n".join(
        f"Environment={_systemd_word(f'{k}={v}')}" for k, v in plan.environment.items()
    )
    return f"""[Unit]
Description=vLLM OpenAI-compatible server %i (inf3kit)
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
EnvironmentFile={ENV_DIR}/vllm-%i.env
{environment}
ExecStart={exec_start}
Restart=on-failure
RestartSec=10
KillSignal=SIGTERM
TimeoutStopSec={plan.drain_seconds + 10}
LimitNOFILE=65536
NoNewPrivileges=yes
PrivateTmp=yes
ProtectHome=yes
ProtectSystem=full

[Install]
WantedBy=multi-user.target"""


def _metrics_unit(plan: BootPlan) -> str:
    ports = ",".join(str(s.port) for s in plan.servers)
    return f"""[Unit]
Description=inf3kit vLLM queue metrics to CloudWatch
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
ExecStart={INSTALL_DIR}/venv/bin/inf3kit llm metrics --ports {ports} --region {Aws.REGION}
Restart=always
RestartSec=10
NoNewPrivileges=yes
PrivateTmp=yes
ProtectHome=yes
ProtectSystem=full

[Install]
WantedBy=multi-user.target"""


def _systemd_word(value: str) -> str:
    """One ExecStart argument or Environment= assignment: `${INF3KIT_VLLM_PORT}` stays a systemd
    variable reference; any other word with a quote, space, `%` or other special character is
    single-quoted (and `%` doubled) for systemd."""
    if value.startswith("${") or all(c.isalnum() or c in "-_./:=,@" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("%", "%%") + "'"


def _units(plan: BootPlan) -> list[str]:
    lines = [f"mkdir -p {ENV_DIR}"]
    for server in plan.servers:
        lines.append(
            f"cat > {ENV_DIR}/vllm-{server.index}.env <<'INF3KIT_ENV'\n"
            f"NEURON_RT_VISIBLE_CORES={server.cores}\n"
            f"INF3KIT_VLLM_PORT={server.port}\n"
            f"BASE_COMPILE_WORK_DIR={INSTALL_DIR}/llm/work/{server.index}\n"
            "INF3KIT_ENV"
        )
    lines += [
        f"cat > {UNIT_DIR}/{SERVER_UNIT}@.service <<'INF3KIT_UNIT'\n{_server_unit(plan)}\n"
        "INF3KIT_UNIT",
        f"cat > {UNIT_DIR}/{METRICS_UNIT}.service <<'INF3KIT_UNIT'\n{_metrics_unit(plan)}\n"
        "INF3KIT_UNIT",
        "systemctl daemon-reload",
        f"systemctl enable {' '.join(_names(plan))} {METRICS_UNIT}.service",
    ]
    return lines


def _names(plan: BootPlan) -> list[str]:
    return [f"{SERVER_UNIT}@{s.index}.service" for s in plan.servers]


def _start_and_wait(plan: BootPlan) -> list[str]:
    """Start every server, then wait for each health route under one deadline.

    A server that stops or restarts before it is healthy fails the boot at once with the end
    of its journal: loading a model fails the same way every time, so waiting out the startup
    timeout would only delay the rollback.
    """
    servers = " ".join(f"{s.index}:{s.port}:{s.cores}" for s in plan.servers)
    unit = f"{SERVER_UNIT}@$i.service"
    stopped = (
        f'fail "vLLM server $i (port $port, NeuronCores $cores) stopped before it was healthy: '
        f"$(journalctl -u {unit} -n 5 --no-pager 2>&1 | tr '\\n' ' ')"
        f'Fix: read journalctl -u {unit} on the instance"'
    )
    late = (
        f'fail "vLLM server $i (port $port, NeuronCores $cores) was not healthy on /health '
        f"after {plan.ready_seconds} s. Fix: read journalctl -u {unit}; a model compiled at "
        'startup (no compiled_prefix) needs a longer startup_timeout"'
    )
    return [
        f"systemctl start {' '.join(_names(plan))}",
        f"poll={POLL_SECONDS}; deadline=$((SECONDS + {plan.ready_seconds}))",
        f"for server in {servers}; do",
        '  IFS=: read -r i port cores <<< "$server"',
        '  until curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$port/health"; do',
        f'    restarts=$(systemctl show -p NRestarts --value "{unit}")',
        f'    if systemctl is-failed --quiet "{unit}" || [ "${{restarts:-0}}" -gt 0 ]; then',
        f"      {stopped}",
        "    fi",
        f'    if [ "$SECONDS" -ge "$deadline" ]; then {late}; fi',
        '    sleep "$poll"',
        "  done",
        '  logger -s -t inf3kit "vLLM server $i healthy on port $port (NeuronCores $cores)"',
        "done",
    ]
