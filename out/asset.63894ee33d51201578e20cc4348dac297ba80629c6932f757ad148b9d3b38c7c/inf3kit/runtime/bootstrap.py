"""``inf3kit bootstrap``: turn a fresh Neuron instance into a ready model server.

The fleet's user data only installs inf3kit and calls this, so the steps are Python code under
test instead of shell in a template: download the bundle from S3, verify every checksum, unpack
it, pick the variant for this hardware, write an environment file and a systemd unit for
``inf3kit serve`` pinned to the NeuronCores, start it, wait for readiness, and signal
CloudFormation. Any failure stops before the service starts (a corrupt bundle never serves) and
sends a FAILURE signal, so a rolling update stops and rolls back. On Neuron hosts a second unit
runs ``inf3kit neuron-metrics``, which publishes the NeuronCore utilisation the fleet scales on.

It runs on every boot (cloud-init's per-boot scripts), because a warm-pool instance is stopped
after its first boot and starts again when it goes into service. A bundle already installed
from the same URI is reused, and with ``--lifecycle-hook`` the launch lifecycle action is
completed once the instance is prepared (warm pool) or serving: EC2 Auto Scaling waits for it
instead of stopping a warm-pool instance before its bootstrap ran.

systemd, the readiness probe, the signal and the instance metadata lookups are injectable so the
sequence is testable without an instance.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inf3kit.runtime.bundle import open_bundle, verify_bundle
from inf3kit.runtime.hardware import HostHardware, probe_hardware, select_variant
from inf3kit.runtime.manifest import ManifestError
from inf3kit.runtime.neuron_metrics import ASG_TAG
from inf3kit.runtime.neuron_metrics import SERVICE_NAME as METRICS_SERVICE_NAME

log = logging.getLogger("inf3kit.bootstrap")

BUNDLE_ENV = "INF3KIT_BUNDLE_URI"
"""Environment variable read when ``--bundle`` is not given."""
SERVICE_NAME = "inf3kit"
READY_PATHS = ("/v2/health/ready", "/ping")
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")
_IMDS = "http://169.254.169.254"
# systemd's own default PATH plus where the DLAMI installs neuron-monitor.
_METRICS_PATH = "/opt/aws/neuron/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Runner = Callable[[Sequence[str]], None]
Signal = Callable[[str, str], None]
"""``signal(status, reason)`` with status SUCCESS or FAILURE."""
Complete = Callable[[str], None]
"""``complete(result)`` with CONTINUE or ABANDON: ends the launch lifecycle action."""
INSTALLED_MARKER = ".inf3kit-installed.json"
"""Written into the model folder: which bundle URI it holds, so a reboot reuses it."""


class BootstrapError(RuntimeError):
    """Bootstrap stopped; the message says which step failed, why, and what to do."""


@dataclass
class BootstrapConfig:
    bundle: str
    port: int = 8080
    model_dir: Path = Path("/opt/inf3kit/model")
    env_file: Path = Path("/etc/inf3kit/serve.env")
    unit_dir: Path = Path("/etc/systemd/system")
    executable: str = field(default_factory=lambda: str(Path(sys.prefix) / "bin" / "inf3kit"))
    env: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None
    stack: str | None = None
    resource: str | None = None
    ready_timeout: float = 1200.0
    grace_seconds: float = 30.0
    asg_name: str | None = None
    """Dimension of the NeuronCore metric; None reads the instance's Auto Scaling tag."""
    lifecycle_hook: str | None = None
    """The group's launch lifecycle hook to complete; None when the group has none."""

    @property
    def unit_path(self) -> Path:
        return self.unit_dir / f"{SERVICE_NAME}.service"

    @property
    def metrics_unit_path(self) -> Path:
        return self.unit_dir / f"{METRICS_SERVICE_NAME}.service"


@dataclass(frozen=True)
class BootstrapResult:
    model_dir: Path
    variant: str
    neuron_cores: int
    started: bool
    signalled: str | None
    metrics_group: str | None = None
    """The group whose NeuronCore utilisation this host publishes (None: not published)."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri or "")
    if not match:
        raise BootstrapError(
            f"bundle {uri!r} is not an s3:// URI. Fix: pass --bundle s3://BUCKET/KEY.tar.gz "
            f"(or set {BUNDLE_ENV})"
        )
    return match["bucket"], match["key"]


def systemctl(args: Sequence[str]) -> None:
    """The real runner: ``systemctl ARGS``, raising on failure."""
    subprocess.run(["systemctl", *args], check=True)


def imds_get(path: str, timeout: float = 2.0) -> str | None:
    """Read an instance metadata path with an IMDSv2 token; None off EC2."""
    try:
        token_req = urllib.request.Request(
            f"{_IMDS}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
        )
        with urllib.request.urlopen(token_req, timeout=timeout) as resp:
            token = resp.read().decode()
        req = urllib.request.Request(
            f"{_IMDS}/latest/{path}", headers={"X-aws-ec2-metadata-token": token}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return str(resp.read().decode().strip())
    except (urllib.error.URLError, OSError):
        return None


def cfn_signal(
    config: BootstrapConfig, instance_id: Callable[[], str | None] = lambda: None
) -> Signal:
    """A signal function for the group's CreationPolicy/UpdatePolicy, or a no-op without a stack."""

    def send(status: str, reason: str) -> None:
        if not (config.stack and config.resource):
            log.info("no --stack/--resource: not signalling CloudFormation (%s)", status)
            return
        import boto3

        unique = instance_id() or imds_get("meta-data/instance-id") or "unknown-instance"
        boto3.client("cloudformation", region_name=config.region).signal_resource(
            StackName=config.stack,
            LogicalResourceId=config.resource,
            UniqueId=unique,
            Status=status,
        )
        log.info("signalled %s to %s/%s: %s", status, config.stack, config.resource, reason)

    return send


def lifecycle_completer(
    config: BootstrapConfig,
    group_name: Callable[[], str | None] | None = None,
    instance_id: Callable[[], str | None] | None = None,
) -> Complete:
    """Completes the launch lifecycle action of this instance, or does nothing without a hook."""

    def complete(result: str) -> None:
        if not config.lifecycle_hook:
            return
        import boto3

        group = (
            config.asg_name
            or (group_name or (lambda: imds_get(f"meta-data/tags/instance/{ASG_TAG}")))()
        )
        instance = (instance_id or (lambda: imds_get("meta-data/instance-id")))()
        if not group or not instance:
            raise BootstrapError(
                f"cannot complete lifecycle hook {config.lifecycle_hook!r}: no Auto Scaling group "
                "or instance id in the instance metadata. Fix: enable instance metadata tags, or "
                "pass --asg"
            )
        boto3.client("autoscaling", region_name=config.region).complete_lifecycle_action(
            LifecycleHookName=config.lifecycle_hook,
            AutoScalingGroupName=group,
            InstanceId=instance,
            LifecycleActionResult=result,
        )
        log.info("lifecycle hook %s: %s", config.lifecycle_hook, result)

    return complete


def wait_ready(port: int, timeout: float, *, host: str = "127.0.0.1", poll: float = 2.0) -> str:
    """Poll the runtime until a readiness path answers 200; return that path."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        for path in READY_PATHS:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
                    if resp.status == 200:
                        return path
                    last = f"{path} answered {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"{path} answered {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = f"{path}: {getattr(exc, 'reason', exc)}"
        if time.monotonic() >= deadline:
            raise BootstrapError(
                f"the server on port {port} was not ready after {timeout:g} s (last: {last}). "
                f"Fix: read `journalctl -u {SERVICE_NAME}`; a large model may need a longer "
                "startup timeout"
            )
        time.sleep(poll)


def pinned_cores(host: HostHardware) -> str | None:
    """NEURON_RT_VISIBLE_CORES for all the NeuronCores this host has (None on CPU)."""
    if host.neuron_cores <= 0:
        return None
    return "0" if host.neuron_cores == 1 else f"0-{host.neuron_cores - 1}"


def render_env_file(config: BootstrapConfig, host: HostHardware) -> str:
    values: dict[str, str] = {
        "INF3KIT_MODEL_DIR": str(config.model_dir),
        "INF3KIT_HOST": "0.0.0.0",
        "INF3KIT_PORT": str(config.port),
        "INF3KIT_GRACE_SECONDS": f"{config.grace_seconds:g}",
    }
    cores = pinned_cores(host)
    if cores is not None:
        values["NEURON_RT_VISIBLE_CORES"] = cores
        values["INF3KIT_NEURON_CORES"] = str(host.neuron_cores)
    values.update(config.env)
    lines = ["# written by `inf3kit bootstrap`; read by the inf3kit systemd unit"]
    for key, value in values.items():
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key) or "\n" in value:
            raise BootstrapError(
                f"environment entry {key}={value!r} cannot go in an environment file. "
                "Fix: use NAME=value with an upper-case name and a one-line value"
            )
        lines.append(f"{key}={json.dumps(value)}")
    return "\n".join(lines) + "\n"


def _unit(description: str, after: str, service: str) -> str:
    """A systemd unit with the hardening and install section both inf3kit units share."""
    return f"""[Unit]
Description={description}
Wants=network-online.target
After={after}

[Service]
Type=exec
{service}
NoNewPrivileges=yes
PrivateTmp=yes
ProtectHome=yes
ProtectSystem=full

[Install]
WantedBy=multi-user.target
"""


def render_unit(config: BootstrapConfig, description: str) -> str:
    grace = float(config.env.get("INF3KIT_GRACE_SECONDS", config.grace_seconds))
    return _unit(
        description,
        "network-online.target",
        f"""EnvironmentFile={config.env_file}
ExecStart={config.executable} serve
Restart=on-failure
RestartSec=5
KillSignal=SIGTERM
TimeoutStopSec={int(grace) + 10}
LimitNOFILE=65536""",
    )


def _systemd_quote(value: str) -> str:
    """One ExecStart argument, safe from systemd's word splitting and $/% expansion."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("%", "%%").replace("$", "$$") + '"'


def render_metrics_unit(config: BootstrapConfig, asg_name: str) -> str:
    args = ["--asg", asg_name, *(("--region", config.region) if config.region else ())]
    return _unit(
        "inf3kit NeuronCore utilisation to CloudWatch",
        f"network-online.target {SERVICE_NAME}.service",
        f"""Environment=PATH={_METRICS_PATH}
ExecStart={config.executable} neuron-metrics {" ".join(map(_systemd_quote, args))}
Restart=always
RestartSec=10""",
    )


def metrics_group(
    config: BootstrapConfig, host: HostHardware, lookup: Callable[[], str | None]
) -> str | None:
    """The group to publish NeuronCore utilisation for; None on CPU hosts and outside a group."""
    if host.neuron_cores <= 0:
        return None
    name = config.asg_name or lookup()
    if not name:
        log.warning(
            "no Auto Scaling group name (--asg, or the %s tag through instance metadata "
            "tags): NeuronCore utilisation is not published and its scaling policy gets no data",
            ASG_TAG,
        )
    return name or None


def download(uri: str, dest: Path, s3_client: Any = None, region: str | None = None) -> Path:
    bucket, key = parse_s3_uri(uri)
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3", region_name=region)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3_client.download_file(bucket, key, str(dest))
    except Exception as exc:  # botocore raises several unrelated types
        raise BootstrapError(
            f"cannot download the bundle {uri}: {exc}. Fix: check the object exists and the "
            "instance role may s3:GetObject it"
        ) from None
    return dest


def install_bundle(config: BootstrapConfig, archive: Path, host: HostHardware) -> tuple[str, str]:
    """Unpack and verify into a staging dir, then swap it in; return (variant, description)."""
    parent = config.model_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=parent))
    try:
        bundle = open_bundle(archive, unpack_dir=staging)
        verify_bundle(bundle)
        variant = select_variant(bundle.manifest, host)
    except ManifestError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BootstrapError(
            f"bundle {config.bundle} is not usable, so the server was not started: {exc}"
        ) from None
    if config.model_dir.exists():
        shutil.rmtree(config.model_dir)
    staging.rename(config.model_dir)
    name = f"{variant.target}/b{variant.batch_size}"
    manifest = bundle.manifest
    description = f"inf3kit model server ({manifest.name} {manifest.version}, {name})"
    marker = {"bundle": config.bundle, "variant": name, "description": description}
    (config.model_dir / INSTALLED_MARKER).write_text(json.dumps(marker))
    return name, description


def installed_bundle(config: BootstrapConfig) -> tuple[str, str] | None:
    """(variant, description) of the bundle a previous boot installed from the same URI."""
    try:
        marker = json.loads((config.model_dir / INSTALLED_MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("bundle") != config.bundle:
        return None
    return str(marker["variant"]), str(marker["description"])


def fetch_bundle(
    config: BootstrapConfig, host: HostHardware, s3_client: Any = None
) -> tuple[str, str]:
    """Install the bundle unless this boot finds it installed already (a warm-pool restart)."""
    installed = installed_bundle(config)
    if installed is not None:
        log.info("bundle %s already installed: %s", config.bundle, installed[0])
        return installed
    with tempfile.TemporaryDirectory(prefix="inf3kit-download-") as tmp:
        archive = download(config.bundle, Path(tmp) / "model.tar.gz", s3_client, config.region)
        return install_bundle(config, archive, host)


def bootstrap(
    config: BootstrapConfig,
    *,
    s3_client: Any = None,
    run: Runner = systemctl,
    ready: Callable[[int, float], str] = wait_ready,
    signal: Signal | None = None,
    lifecycle_state: Callable[[], str | None] | None = None,
    hardware: HostHardware | None = None,
    group_name: Callable[[], str | None] | None = None,
    complete: Complete | None = None,
) -> BootstrapResult:
    """Run every step; on failure signal FAILURE, abandon the launch, raise BootstrapError."""
    signal = signal or cfn_signal(config)
    complete = complete or lifecycle_completer(config, group_name)
    state = (
        lifecycle_state or (lambda: imds_get("meta-data/autoscaling/target-lifecycle-state"))
    )()
    try:
        host = hardware or probe_hardware()
        log.info("host: %s (%s)", host.target, host.detail)
        variant, description = fetch_bundle(config, host, s3_client)
        group = metrics_group(
            config, host, group_name or (lambda: imds_get(f"meta-data/tags/instance/{ASG_TAG}"))
        )
        config.env_file.parent.mkdir(parents=True, exist_ok=True)
        config.env_file.write_text(render_env_file(config, host))
        config.env_file.chmod(0o640)
        config.unit_dir.mkdir(parents=True, exist_ok=True)
        config.unit_path.write_text(render_unit(config, description))
        services = [f"{SERVICE_NAME}.service"]
        if group:
            config.metrics_unit_path.write_text(render_metrics_unit(config, group))
            services.append(f"{METRICS_SERVICE_NAME}.service")
        run(["daemon-reload"])
        for service in services:
            run(["enable", service])
        # A warm-pool instance only prepares: it starts serving (systemd, enabled above) when
        # it boots into service, and it is not one of the signals CloudFormation counts.
        if state and state.startswith("Warmed:") and state != "Warmed:Running":
            log.info("lifecycle state %s: prepared, not started", state)
            complete("CONTINUE")
            return BootstrapResult(config.model_dir, variant, host.neuron_cores, False, None, group)
        run(["start", services[0]])
        path = ready(config.port, config.ready_timeout)
        # Publish once serving: a loading model reads as idle. (A warm-pool instance starts
        # both units at boot; the group's instance warm-up covers its loading minutes.)
        for service in services[1:]:
            run(["start", service])
        complete("CONTINUE")
    except BootstrapError as exc:
        _report_failure(signal, complete, str(exc))
        raise
    except Exception as exc:
        _report_failure(signal, complete, f"{type(exc).__name__}: {exc}")
        raise BootstrapError(f"bootstrap failed: {type(exc).__name__}: {exc}") from exc
    if state and state.startswith("Warmed:"):
        return BootstrapResult(config.model_dir, variant, host.neuron_cores, True, None, group)
    signal("SUCCESS", f"ready on {path} with {variant}")
    return BootstrapResult(config.model_dir, variant, host.neuron_cores, True, "SUCCESS", group)


def _report_failure(signal: Signal, complete: Complete, reason: str) -> None:
    """Tell CloudFormation and Auto Scaling, whichever is waiting; neither may mask the error."""
    with contextlib.suppress(Exception):
        signal("FAILURE", reason[:4000])
    with contextlib.suppress(Exception):
        complete("ABANDON")


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BootstrapError(
                f"--env {pair!r} is not NAME=value. Fix: e.g. --env INF3KIT_PORT=8080"
            )
        env[key] = value
    return env


def bundle_from_env(value: str | None) -> str:
    uri = value or os.environ.get(BUNDLE_ENV, "")
    if not uri:
        raise BootstrapError(
            f"no bundle given. Fix: pass --bundle s3://BUCKET/KEY.tar.gz or set {BUNDLE_ENV}"
        )
    return uri
