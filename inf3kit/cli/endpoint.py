"""Endpoint commands: invoke a deployed SageMaker endpoint, or stream an LLM's answer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError

from inf3kit.cli.chat_stream import (
    DEFAULT_MAX_TOKENS,
    ChatRequestError,
    StreamedError,
    TokenText,
    chat_request,
)
from inf3kit.cli.shared import (
    app,
    err,
    print_error,
)

PANEL = "Use endpoints"
STREAM_READ_TIMEOUT_SECONDS = 300
"""How long a stream may stay silent: a long prompt's prefill comes before the first token."""


@app.command(rich_help_panel=PANEL)
def invoke(
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="endpoint name (the stack output EndpointName)")
    ],
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help="file whose bytes are the request body"),
    ] = None,
    content_type: Annotated[
        str, typer.Option("--content-type", help="Content-Type of the body")
    ] = "application/json",
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: your AWS config)")
    ] = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="stream an LLM endpoint's answer (InvokeEndpointWithResponseStream), printing "
            "tokens as they arrive",
        ),
    ] = False,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="with --stream: one user message")
    ] = None,
    messages: Annotated[
        Path | None,
        typer.Option(
            "--messages", help='with --stream: a JSON list of {"role", "content"} messages'
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", help="with --stream: most tokens to generate")
    ] = DEFAULT_MAX_TOKENS,
) -> None:
    """Send one request to a deployed SageMaker endpoint and print its answer (a smoke test).

    With --stream, send an OpenAI-style chat request (--prompt or --messages, or your own body
    with --input) to an LLM endpoint and print the generated text as it streams. The caller
    needs sagemaker:InvokeEndpoint (grant_invoke), or with --stream
    sagemaker:InvokeEndpointWithResponseStream (grant_invoke_with_response_stream). The answer
    goes to stdout; status lines go to stderr.
    """
    if not stream and (prompt is not None or messages is not None):
        print_error("--prompt/--messages need --stream", "they build a streamed chat request")
        raise typer.Exit(2)
    if stream and input_file is None:
        try:
            body = json.dumps(
                chat_request(prompt=prompt, messages_file=messages, max_tokens=max_tokens)
            ).encode()
        except ChatRequestError as exc:
            print_error("invoke --stream", exc)
            raise typer.Exit(2) from None
    elif input_file is None:
        print_error("--input is required", "Fix: pass --input FILE, or --stream with --prompt TEXT")
        raise typer.Exit(2)
    elif prompt is not None or messages is not None:
        print_error("--input and --prompt/--messages", "give one request body. Fix: drop one")
        raise typer.Exit(2)
    else:
        body = _read_body(input_file)
    client = _client(region, stream)
    if stream:
        _stream(client, endpoint, body, content_type)
    else:
        _invoke(client, endpoint, body, content_type)


def _read_body(input_file: Path) -> bytes:
    try:
        return input_file.read_bytes()
    except OSError as exc:
        print_error(
            f"cannot read --input {input_file}",
            f"{exc.strerror}. Fix: pass the path of a request body file, e.g. a JSON request",
        )
        raise typer.Exit(2) from None


def _client(region: str | None, stream: bool) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    # A streamed generation is not retried: a retry after tokens were printed would print a
    # second, different answer.
    config = (
        Config(read_timeout=STREAM_READ_TIMEOUT_SECONDS, retries={"total_max_attempts": 1})
        if stream
        else None
    )
    try:
        return boto3.client("sagemaker-runtime", region_name=region, config=config)
    except NoRegionError:
        err.print(
            "[red]no AWS region[/]. Fix: pass --region or set AWS_DEFAULT_REGION", highlight=False
        )
        raise typer.Exit(2) from None


def _invoke(client: Any, endpoint: str, body: bytes, content_type: str) -> None:
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint, Body=body, ContentType=content_type
        )
        answer = response["Body"].read()
    except ClientError as exc:
        _report(exc, endpoint, client.meta.region_name)
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


def _stream(client: Any, endpoint: str, body: bytes, content_type: str) -> None:
    text = TokenText()
    printed = 0
    try:
        response = client.invoke_endpoint_with_response_stream(
            EndpointName=endpoint, Body=body, ContentType=content_type
        )
        for event in response["Body"]:
            part = _payload(event)
            printed += _write(text.feed(part))
        printed += _write(text.finish())
    except ClientError as exc:
        _end_line(printed)
        _report(exc, endpoint, client.meta.region_name)
    except StreamedError as exc:
        _end_line(printed)
        print_error("the model reported an error in its stream", exc)
        raise typer.Exit(1) from None
    except BotoCoreError as exc:
        _end_line(printed)
        print_error("invoke --stream failed", exc)
        raise typer.Exit(1) from None
    _end_line(printed)
    err.print(
        f"[green]ok[/] {endpoint} variant {response.get('InvokedProductionVariant', '?')}: "
        f"{text.chunks} chunks, {printed} characters streamed",
        highlight=False,
    )


def _payload(event: dict[str, Any]) -> bytes:
    """A PayloadPart's bytes; the stream's error events arrive as EventStreamError instead."""
    part = event.get("PayloadPart")
    return bytes(part.get("Bytes", b"")) if isinstance(part, dict) else b""


def _write(piece: str) -> int:
    if piece:
        sys.stdout.write(piece)
        sys.stdout.flush()
    return len(piece)


def _end_line(printed: int) -> None:
    if printed:
        sys.stdout.write("\n")
        sys.stdout.flush()


def _report(exc: ClientError, endpoint: str, where: str) -> NoReturn:
    """Print a SageMaker Runtime error with its fix and exit 1."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "?"), error.get("Message", str(exc))
    if code == "ValidationError" and "not found" in message:
        print_error(
            f"endpoint {endpoint!r} not found in {where}",
            f"{message} Fix: use the stack's EndpointName output and the stack's region (--region)",
        )
    elif code == "ModelError":
        print_error("the model answered with an error", message)
    elif code == "ModelStreamError":
        print_error("the model's stream failed", message)
    elif code == "InternalStreamFailure":
        print_error(
            "SageMaker's stream failed", f"{message} Fix: retry; the answer above is partial"
        )
    else:
        print_error(f"invoke failed ({code})", message)
    raise typer.Exit(1) from None
