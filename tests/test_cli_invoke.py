"""`inf3kit invoke`: one request to a deployed endpoint through boto3's sagemaker-runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from inf3kit.cli import app

runner = CliRunner()
CONTENT_TYPE = ("--content-type", "application/x-npy")
REGION = ("--region", "us-east-1")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Test credentials, no real AWS config, no region unless a test sets one."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "request.json"
    path.write_bytes(b'{"inputs": [[0.1, 0.2]]}')
    return path


def _stubbed(monkeypatch: pytest.MonkeyPatch) -> Stubber:
    """Route the command's client through a Stubber, to script answers and check the request."""
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    stubber = Stubber(client)
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
    return stubber


def test_invoke_prints_the_answer_from_moto(request_file: Path) -> None:
    with mock_aws():
        result = runner.invoke(
            app,
            ["invoke", "--endpoint", "demo", "--input", str(request_file), "--region", "us-east-1"],
        )
    assert result.exit_code == 0, result.output
    assert "ok demo variant" in result.output
    assert "body" in result.stdout


def test_invoke_sends_the_file_bytes_and_content_type(
    monkeypatch: pytest.MonkeyPatch, request_file: Path
) -> None:
    stubber = _stubbed(monkeypatch)
    answer: dict[str, Any] = {
        "Body": __import__("io").BytesIO(b'{"outputs": [0.9]}'),
        "ContentType": "application/json",
        "InvokedProductionVariant": "AllTraffic",
    }
    stubber.add_response(
        "invoke_endpoint",
        answer,
        expected_params={
            "EndpointName": "demo",
            "Body": request_file.read_bytes(),
            "ContentType": "application/x-npy",
        },
    )
    with stubber:
        result = runner.invoke(
            app,
            [*("invoke", "--endpoint", "demo", "--input", str(request_file)), *CONTENT_TYPE],
        )
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith('{"outputs": [0.9]}\n')
    assert "ok demo variant AllTraffic: 18 bytes, application/json" in result.output
    stubber.assert_no_pending_responses()


def test_fails_when_input_file_is_missing(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["invoke", "--endpoint", "demo", "--input", str(tmp_path / "absent.json"), *REGION],
    )
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        f"cannot read --input {tmp_path / 'absent.json'}: No such file or directory. "
        "Fix: pass the path of a request body file, e.g. a JSON request"
    )


def test_fails_when_endpoint_is_not_found(
    monkeypatch: pytest.MonkeyPatch, request_file: Path
) -> None:
    stubber = _stubbed(monkeypatch)
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message="Endpoint nope of account 123456789012 not found.",
        http_status_code=400,
    )
    with stubber:
        result = runner.invoke(app, ["invoke", "--endpoint", "nope", "--input", str(request_file)])
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == (
        "endpoint 'nope' not found in eu-west-1: Endpoint nope of account 123456789012 not "
        "found. Fix: use the stack's EndpointName output and the stack's region (--region)"
    )


def test_fails_when_the_model_answers_an_error(
    monkeypatch: pytest.MonkeyPatch, request_file: Path
) -> None:
    stubber = _stubbed(monkeypatch)
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message='Received client error (400) from primary: {"error": "bad shape"}',
        http_status_code=424,
    )
    with stubber:
        result = runner.invoke(app, ["invoke", "--endpoint", "demo", "--input", str(request_file)])
    assert result.exit_code == 1
    assert "the model answered with an error" in result.output
    assert '"bad shape"' in result.output


def test_fails_when_access_is_denied(monkeypatch: pytest.MonkeyPatch, request_file: Path) -> None:
    stubber = _stubbed(monkeypatch)
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: sagemaker:InvokeEndpoint",
        http_status_code=403,
    )
    with stubber:
        result = runner.invoke(app, ["invoke", "--endpoint", "demo", "--input", str(request_file)])
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == (
        "invoke failed (AccessDeniedException): not authorized to perform: sagemaker:InvokeEndpoint"
    )


def test_fails_when_no_region_is_known(request_file: Path) -> None:
    result = runner.invoke(app, ["invoke", "--endpoint", "demo", "--input", str(request_file)])
    assert result.exit_code == 2
    assert "no AWS region. Fix: pass --region or set AWS_DEFAULT_REGION" in result.output
