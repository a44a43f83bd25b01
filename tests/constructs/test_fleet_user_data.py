"""The fleet's user data run as a script under bash, with stand-ins for what an instance has.

`python3 -m venv`, the venv's `pip` and `inf3kit`, `aws`, `cloud-init` and `logger` are small
scripts that record their arguments and fail on demand, and the absolute paths of the script
point into a temporary folder; everything else is the user data the template carries.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3

from inf3kit.constructs import NeuronFleet, RuntimeWheel, WarmPool

STAND_INS = {
    "python3": """#!/bin/bash
# `python3 -m venv DIR`: a venv whose pip and inf3kit record their calls.
echo "python3 $*" >> "$CALLS"
mkdir -p "$3/bin"
for tool in pip inf3kit; do
  printf '#!/bin/bash\\necho "%s $*" >> "$CALLS"\\n[ "$FAIL" != "%s" ]\\n' "$tool" "$tool" \\
    > "$3/bin/$tool"
  chmod +x "$3/bin/$tool"
done
""",
    "aws": '#!/bin/bash\necho "aws $*" >> "$CALLS"\n',
    "cloud-init": "#!/bin/bash\necho i-0123456789abcdef0\n",
    "logger": '#!/bin/bash\necho "logger $*" >> "$CALLS"\n',
}


@pytest.fixture(scope="module")
def user_data() -> str:
    """The warm-pool fleet's user data with CloudFormation references filled in."""
    stack = cdk.Stack(
        cdk.App(), "Boot", env=cdk.Environment(account="111122223333", region="eu-west-1")
    )
    NeuronFleet(
        stack,
        "Fleet",
        vpc=ec2.Vpc(stack, "Vpc", max_azs=2),
        instance_types=["inf2.xlarge"],
        bundle_bucket=s3.Bucket.from_bucket_name(stack, "Models", "models-bucket"),
        bundle_key="ranker/model.tar.gz",
        warm_pool=WarmPool(min_size=1),
        runtime_wheel=RuntimeWheel(
            s3.Bucket.from_bucket_name(stack, "Assets", "assets-bucket"),
            "0a1b2c3d.whl",
            "inf3kit-0.1.0-py3-none-any.whl",
        ),
    )
    template = json.dumps(cdk.assertions.Template.from_stack(stack).to_json())
    (lt,) = [
        r
        for r in json.loads(template)["Resources"].values()
        if r["Type"] == "AWS::EC2::LaunchTemplate"
    ]
    parts = lt["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "eu-west-1" for p in parts)


def _run(user_data: str, tmp_path: Path, fail: str = "") -> tuple[int, list[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STAND_INS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    script = user_data.replace("/opt/inf3kit", str(tmp_path / "opt")).replace(
        "/var/lib/cloud/scripts/per-boot", str(tmp_path / "per-boot")
    )
    calls = tmp_path / "calls.log"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(calls),
        "FAIL": fail,
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    lines = calls.read_text().splitlines() if calls.exists() else []
    return done.returncode, lines, tmp_path / "per-boot" / "inf3kit-bootstrap"


def test_first_boot_installs_from_the_wheel_then_bootstraps_from_the_per_boot_script(
    user_data: str, tmp_path: Path
) -> None:
    code, calls, boot_script = _run(user_data, tmp_path)
    assert code == 0
    assert [c.split()[0] for c in calls] == ["python3", "aws", "pip", "inf3kit"]
    wheel = f"{tmp_path}/opt/inf3kit-0.1.0-py3-none-any.whl"
    assert calls[1] == f"aws s3 cp s3://assets-bucket/0a1b2c3d.whl {wheel} --region eu-west-1"
    # inf3kit itself only from the wheel the stack shipped: it is on no public index.
    pip_args = calls[2].split()
    assert f"{wheel}[serve]" in pip_args
    assert not [a for a in pip_args if a.startswith("inf3kit")]
    assert calls[3].startswith("inf3kit bootstrap --bundle s3://models-bucket/ranker/model.tar.gz")
    assert "--region eu-west-1 --stack Boot --resource FleetASG" in calls[3]
    assert "--lifecycle-hook inf3kit-bootstrap" in calls[3]
    assert not any(c.startswith("aws cloudformation") for c in calls)
    # The next boot (a warm-pool instance going into service) runs the same bootstrap again.
    again = subprocess.run(
        [str(boot_script)], env={**os.environ, "CALLS": str(tmp_path / "again.log")}, timeout=30
    )
    assert again.returncode == 0
    assert (tmp_path / "again.log").read_text().splitlines() == [calls[3]]


def test_a_failed_install_signals_failure_at_once_without_the_runtime(
    user_data: str, tmp_path: Path
) -> None:
    code, calls, boot_script = _run(user_data, tmp_path, fail="pip")
    assert code != 0
    assert calls[0].startswith("python3 -m venv")
    assert calls[1].startswith("aws s3 cp")
    assert calls[2].startswith("pip install")
    assert calls[3].startswith("logger -s -t inf3kit user data failed at line ")
    assert re.fullmatch(
        "aws cloudformation signal-resource --status FAILURE --region eu-west-1 --stack-name "
        "Boot --logical-resource-id FleetASG[0-9A-F]{8} --unique-id i-0123456789abcdef0",
        calls[4],
    )
    assert len(calls) == 5  # no bootstrap ran, nothing else was tried
    assert not boot_script.exists()
