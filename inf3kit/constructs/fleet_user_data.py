"""A fleet instance's user data (install the runtime, hand over to `inf3kit bootstrap`), and
the instance role's grants that boot needs.

Rendered as bash with `set -euo pipefail`; tests/constructs/test_fleet_user_data.py runs it with
stand-ins for the AWS CLI, cloud-init and the disks.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_cdk import Aws, Duration, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from inf3kit.constructs.fleet_metrics import NEURON_METRIC_NAMESPACE
from inf3kit.constructs.runtime_install import INSTALL_DIR, RuntimeWheel

if TYPE_CHECKING:
    from inf3kit.constructs.fleet_metrics import FleetBase

BOOT_SCRIPT = "/var/lib/cloud/scripts/per-boot/inf3kit-bootstrap"
"""cloud-init runs this on every boot; user data itself runs only on the first."""

ROOT_DISKS = r"""$(lsblk -lnspo NAME "$(findmnt -nvo SOURCE /)" | tr '\n' ' ')"""
"""Shell: the root filesystem's device and the devices under it (partition, disk), one line."""


def data_volume_discovery(
    by_id: str = "/dev/disk/by-id", root: str = ROOT_DISKS, wait_seconds: int = 60
) -> str:
    """Shell that sets `dev` to the EBS data volume's device, or to '' if none appears.

    Nitro renames /dev/sdf to an NVMe device in attach order, and trn sizes also carry NVMe
    instance storage, so the device name says nothing. EBS volumes have
    `nvme-Amazon_Elastic_Block_Store_*` links in `by_id` (instance storage has
    `nvme-Amazon_EC2_NVMe_Instance_Storage_*`); the first one that is neither a partition nor
    a device of the root filesystem (`root`) is the data volume. Waits up to `wait_seconds`
    for it to attach and never fails under `set -euo pipefail` (no pipeline can SIGPIPE, every
    test is inside `if`), so a missing volume leaves the install on the root volume.
    """
    return (
        f'root=" {root} "; dev=""; for _ in $(seq {wait_seconds}); do '
        f"for l in {by_id}/nvme-Amazon_Elastic_Block_Store_*; do "
        'if [[ -e $l && $l != *-part* ]]; then d=$(readlink -f "$l"); '
        'if [[ $root != *" $d "* ]]; then dev=$d; break 2; fi; fi; done; sleep 1; done'
    )


def add_user_data(
    fleet: FleetBase,
    *,
    bundle_url: str,
    port: int,
    drain: Duration,
    startup_timeout: Duration,
    serving_environment: Mapping[str, str],
    requirements: tuple[str, ...],
    pip_extra_index_url: str | None,
    wheel: RuntimeWheel | None,
    data_volume: bool,
    lifecycle_hook: str | None,
) -> None:
    """Short on purpose: install the runtime, then `inf3kit bootstrap` does the work.

    The bootstrap command goes into a cloud-init per-boot script, so it runs again when a
    warm-pool instance starts into service. A failure before it can run (the install) is
    signalled with the AWS CLI the DLAMI ships, which does not depend on what failed.
    """
    stack = Stack.of(fleet)
    venv = f"{INSTALL_DIR}/venv"
    env = {
        "INF3KIT_GRACE_SECONDS": str(int(drain.to_seconds())),
        **serving_environment,
    }
    bootstrap = [
        f"{venv}/bin/inf3kit",
        "bootstrap",
        "--bundle",
        bundle_url,
        "--port",
        str(port),
        "--region",
        Aws.REGION,
        "--stack",
        stack.stack_name,
        "--resource",
        group_logical_id(fleet),
        "--ready-timeout",
        str(int(startup_timeout.to_seconds())),
        *(["--lifecycle-hook", lifecycle_hook] if lifecycle_hook else []),
        *[arg for k, v in env.items() for arg in ("--env", f"{k}={v}")],
    ]
    commands = ["set -euo pipefail", f"mkdir -p {INSTALL_DIR}"]
    if data_volume:
        commands += [
            data_volume_discovery(),
            f'if [ -n "$dev" ]; then mkfs.xfs -q "$dev"; mount "$dev" {INSTALL_DIR}; '
            f'echo "UUID=$(blkid -s UUID -o value "$dev") {INSTALL_DIR} xfs '
            'defaults,nofail 0 2" >> /etc/fstab; fi',
        ]
    commands += install_runtime(requirements, pip_extra_index_url, wheel)
    command = shell_join(bootstrap)
    commands += [
        f"mkdir -p {BOOT_SCRIPT.rsplit('/', 1)[0]}",
        f"cat > {BOOT_SCRIPT} <<'INF3KIT_BOOT'\n#!/bin/bash\nexec {command}\nINF3KIT_BOOT",
        f"chmod 0755 {BOOT_SCRIPT}",
        BOOT_SCRIPT,
    ]
    fleet.launch_template.user_data.add_commands(failure_trap(fleet), *commands)  # type: ignore[union-attr]


def group_logical_id(fleet: FleetBase) -> str:
    """The Auto Scaling group's logical id, which the instances' signals name."""
    return Stack.of(fleet).get_logical_id(fleet.group.node.default_child)  # type: ignore[arg-type]


def shell_join(args: list[str]) -> str:
    """One shell command line; CloudFormation references stay unquoted (they become plain
    words: region, stack name)."""
    return " ".join(shlex.quote(a) if not Token.is_unresolved(a) else a for a in args)


def signal_command(fleet: FleetBase, status: str) -> str:
    """The AWS CLI call that signals `status` for this instance to the group's CloudFormation
    creation or update policy (the DLAMI ships the AWS CLI; nothing inf3kit installs)."""
    stack = Stack.of(fleet)
    return " ".join(
        [
            f"aws cloudformation signal-resource --status {status}",
            *("--region", Aws.REGION, "--stack-name", stack.stack_name),
            *("--logical-resource-id", group_logical_id(fleet)),
            '--unique-id "$(cloud-init query instance_id)"',
        ]
    )


def failure_trap(fleet: FleetBase) -> str:
    """An ERR trap that logs the failing line and signals FAILURE at once, so a failed boot
    stops a rollout now instead of after the signal timeout."""
    log_failure = 'logger -s -t inf3kit "user data failed at line $LINENO"'
    return f"trap '{log_failure}; {signal_command(fleet, 'FAILURE')} || true' ERR"


def install_runtime(
    requirements: tuple[str, ...], pip_extra_index_url: str | None, wheel: RuntimeWheel | None
) -> list[str]:
    """Shell that creates /opt/inf3kit/venv and installs inf3kit there (from `wheel` if given)."""
    venv = f"{INSTALL_DIR}/venv"
    pip = [f"{venv}/bin/pip", "install", "--quiet"]
    if pip_extra_index_url:
        pip += ["--extra-index-url", pip_extra_index_url]
    commands = [f"python3 -m venv {venv}"]
    if wheel is not None:
        wheel_path = f"{INSTALL_DIR}/{wheel.file_name}"
        commands.append(f"aws s3 cp {shlex.quote(wheel.s3_url)} {wheel_path} --region {Aws.REGION}")
        requirements = wheel.requirements(wheel_path, requirements)
    commands.append(" ".join([*pip, *map(shlex.quote, requirements)]))
    return commands


def grant_boot_access(
    fleet: FleetBase, bundle_bucket: s3.IBucket, bundle_key: str, wheel: RuntimeWheel | None
) -> None:
    """What the user data and the bootstrap use: the bundle, the wheel, metrics, logs, the
    CloudFormation signal, and Session Manager instead of SSH."""
    fleet.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ReadBundle",
            actions=["s3:GetObject"],
            resources=[bundle_bucket.arn_for_objects(bundle_key)],
        )
    )
    if bundle_bucket.encryption_key is not None:
        bundle_bucket.encryption_key.grant_decrypt(fleet.role)
    grant_instance_basics(fleet, wheel, NEURON_METRIC_NAMESPACE)


def grant_instance_basics(fleet: FleetBase, wheel: RuntimeWheel | None, namespace: str) -> None:
    """What every fleet instance uses: the wheel, metrics in `namespace` only, the log group,
    the CloudFormation signal, and Session Manager instead of SSH."""
    if wheel is not None:
        wheel.grant_read(fleet.role)
    fleet.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="PublishNeuronMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
        )
    )
    fleet.log_group.grant_write(fleet.role)
    # The stack id is the stack's full ARN, so the grant names exactly this stack.
    fleet.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="SignalBootstrapResult",
            actions=["cloudformation:SignalResource"],
            resources=[Aws.STACK_ID],
        )
    )
    fleet.role.add_managed_policy(
        iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")
    )
