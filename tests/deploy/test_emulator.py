"""The local AWS emulator as a managed child process: start, reuse, stop, bad ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from inf3kit.deploy import LocalAws, LocalAwsError, running, start, stop


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[LocalAws]:
    aws, started = start(state_dir=tmp_path)
    assert started
    yield aws
    stop(aws)


def test_emulator_answers_real_clients_and_is_reused(emulator: LocalAws, tmp_path: Path) -> None:
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="probe")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["probe"]
    again, started = start(state_dir=tmp_path)
    assert again == emulator and not started


def test_emulator_env_never_points_at_the_users_aws_config(emulator: LocalAws) -> None:
    env = emulator.env()
    assert env["AWS_ENDPOINT_URL"] == f"http://localhost:{emulator.port}"
    assert Path(env["AWS_CONFIG_FILE"]).parent == emulator.state_dir
    assert Path(env["AWS_SHARED_CREDENTIALS_FILE"]).parent == emulator.state_dir
    assert Path(env["AWS_CONFIG_FILE"]).read_text() == ""


def test_stop_ends_the_process_and_forgets_it(tmp_path: Path) -> None:
    aws, _ = start(state_dir=tmp_path)
    stop(aws)
    assert running(tmp_path) is None
    with pytest.raises(OSError):
        socket.create_connection(("localhost", aws.port), timeout=1)


def test_fails_when_port_is_taken_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(LocalAwsError) as info:
            start(port, state_dir=tmp_path)
    assert str(info.value) == (
        f"port {port} is already in use by another program. "
        "Fix: pass a free port with --port, or omit --port to pick one automatically"
    )


def test_fails_when_another_port_is_asked_while_one_runs(
    emulator: LocalAws, tmp_path: Path
) -> None:
    with pytest.raises(LocalAwsError) as info:
        start(emulator.port + 1, state_dir=tmp_path)
    assert str(info.value) == (
        f"a local AWS emulator already runs on port {emulator.port}, not {emulator.port + 1}. "
        "Fix: drop --port to reuse it, or stop it first with `inf3kit local stop`"
    )


def test_emulator_accepts_neuron_sagemaker_types_moto_lacks(emulator: LocalAws) -> None:
    sm = emulator.client("sagemaker")
    sm.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
    )
    for itype in ("ml.inf2.xlarge", "ml.inf3.xlarge"):
        sm.create_endpoint_config(
            EndpointConfigName=itype.replace(".", "-"),
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InstanceType": itype,
                    "InitialInstanceCount": 1,
                }
            ],
        )
    with pytest.raises(sm.exceptions.ClientError, match=r"ml\.nope"):
        sm.create_endpoint_config(
            EndpointConfigName="bad",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InstanceType": "ml.nope",
                    "InitialInstanceCount": 1,
                }
            ],
        )
