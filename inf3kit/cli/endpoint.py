"""Endpoint commands: invoke a deployed SageMaker endpoint."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    pass

from inf3kit.cli.shared import (
    app,
    err,
    print_error,
)

PANEL = "Use endpoints"


@app.command(rich_help_panel=PANEL)
def invoke(
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="endpoint name (the stack output EndpointName)")
    ],
    input_file: Annotated[
        Path, typer.Option("--input", help="file whose bytes are the request body")
    ],
    content_type: Annotated[
        str, typer.Option("--content-type", help="Content-Type of the body")
    ] = "application/json",
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: your AWS config)")
    ] = None,
) -> None:
    """Send one request to a deployed SageMaker endpoint and print its answer (a smoke test).

    The caller needs sagemaker:InvokeEndpoint on the endpoint, which NeuronEndpoint.grant_invoke
    gives. The answer body goes to stdout; status lines go to stderr.
    """
    import boto3
    from botocore.exceptions import NoRegionError

    try:
        body = input_file.read_bytes()
    except OSError as exc:
        print_error(
            f"cannot read --input {input_file}",
            f"{exc.strerror}. Fix: pass the path of a request body file, e.g. a JSON request",
        )
        raise typer.Exit(2) from None
    try:
        client = boto3.client("sagemaker-runtime", region_name=region)
        response = client.invoke_endpoint(
            EndpointName=endpoint, Body=body, ContentType=content_type
        )
        answer = response["Body"].read()
    except NoRegionError:
        err.print("[red]no AWS region[/]. Fix: pass --region or set AWS_REGION", highlight=False)
        raise typer.Exit(2) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", str(exc))
        where = client.meta.region_name
        if code == "ValidationError" and "not found" in message:
            print_error(
                f"endpoint {endpoint!r} not found in {where}",
                f"{message} Fix: use the stack's EndpointName output and the stack's region "
                "(--region)",
            )
        elif code == "ModelError":
            print_error("the model answered with an error", message)
        else:
            print_error(f"invoke failed ({code})", message)
        raise typer.Exit(1) from None
    except BotoCoreError as exc:
        print_error("invoke failed", exc)
        raise typer.Exit(1) from None
    err.print(
        f"[green]ok[/] {endpoint} variant {response.get('InvokedProductionVariant', '?')}: "
        f"{len(answer)} bytes, {response.get('ContentType', '?')}",
        highlight=False,
    )
    sys.stdout.buffer.write(answer)
    if not answer.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
