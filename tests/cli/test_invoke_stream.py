"""`inf3kit invoke --stream` against a real local HTTP server that answers like SageMaker Runtime.

moto does not emulate InvokeEndpointWithResponseStream, so the server here speaks it: a POST to
/endpoints/NAME/invocations-response-stream answered with `application/vnd.amazon.eventstream`
messages (prelude, headers, payload, CRC32s, as botocore's decoder reads them), sent as chunks
the test releases one at a time. boto3 runs unchanged, pointed at the server by
AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import json
import os
import queue
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.cli.chat_stream import TokenText

runner = CliRunner()
STRING = 7
"""The event-stream header value type of a string."""


def _header(name: str, value: str) -> bytes:
    raw = value.encode()
    return bytes([len(name)]) + name.encode() + bytes([STRING]) + struct.pack(">H", len(raw)) + raw


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event-stream encoding: total and headers length, prelude CRC,
    headers, payload, message CRC (all big-endian, CRC32)."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(head) + len(payload) + 4, len(head))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    return message + struct.pack(">I", zlib.crc32(message))


def payload_part(data: bytes) -> bytes:
    return event_message(
        {
            ":event-type": "PayloadPart",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        data,
    )


def model_stream_error(message: str) -> bytes:
    return event_message(
        {
            ":exception-type": "ModelStreamError",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"Message": message, "ErrorCode": "StreamBroken"}).encode(),
    )


class FakeRuntime:
    """A SageMaker Runtime stand-in on a real socket: records requests, streams what it is given.

    Each answer is a list of event messages; `None` in the list makes the server wait until the
    test calls `release()`, so a test can check output that arrived before the rest.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: queue.Queue[tuple[int, list[bytes | None]]] = queue.Queue()
        self.gate = threading.Event()
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                runtime.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, parts = runtime.answers.get_nowait()
                self.send_response(status)
                if status != 200:
                    error = parts[0] or b""
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Amzn-ErrorType", json.loads(error)["__type"])
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                self.send_header("X-Amzn-Invoked-Production-Variant", "AllTraffic")
                self.send_header("X-Amzn-SageMaker-Content-Type", "application/jsonlines")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in parts:
                    if part is None:
                        runtime.gate.wait(timeout=30)
                        continue
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("localhost", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, parts: list[bytes | None], status: int = 200) -> None:
        self.answers.put((status, parts))

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeRuntime]:
    server = FakeRuntime()
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    yield server
    server.close()


def _chunk(content: str) -> bytes:
    """One LMI chat completion chunk, as a JSON line."""
    return (
        json.dumps(
            {
                "id": "chatcmpl-0",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": content, "role": "assistant"}}],
            }
        ).encode()
        + b"\n"
    )


def test_the_encoder_speaks_botocores_event_stream() -> None:
    """The server's messages decode with botocore's own event-stream parser."""
    buffer = EventStreamBuffer()
    buffer.add_data(payload_part(b"hello"))
    (message,) = list(buffer)
    assert message.payload == b"hello"
    assert message.headers[":event-type"] == "PayloadPart"


def test_stream_sends_a_chat_request_and_prints_the_tokens(runtime: FakeRuntime) -> None:
    # One chunk cut across two PayloadParts: SageMaker splits the byte stream where it likes.
    second = _chunk(" world")
    runtime.answer(
        [payload_part(_chunk("Hello")), payload_part(second[:9]), payload_part(second[9:])]
    )
    result = runner.invoke(
        app,
        ["invoke", "--endpoint", "chat", "--stream", "--prompt", "Say hi", "--max-tokens", "8"],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "Hello world\n"
    assert "ok chat variant AllTraffic: 2 chunks, 11 characters streamed" in result.stderr
    (request,) = runtime.requests
    assert request["path"] == "/endpoints/chat/invocations-response-stream"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 8,
        "stream": True,
    }


def test_stream_prints_each_token_before_the_next_arrives(runtime: FakeRuntime) -> None:
    """The first token is on stdout while the server still holds the second back."""
    runtime.answer([payload_part(_chunk("Hello")), None, payload_part(_chunk(" world"))])
    command = [sys.executable, "-c", "from inf3kit.cli import app; app()", "invoke", "--endpoint"]
    command += ["chat", "--stream"]
    with subprocess.Popen(
        [*command, "--prompt", "Say hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    ) as process:
        assert process.stdout is not None
        assert process.stdout.read(5) == b"Hello"  # blocks until the first token is printed
        runtime.release()
        rest, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert rest == b" world\n"


def test_stream_reads_server_sent_events_and_a_messages_file(
    runtime: FakeRuntime, tmp_path: Path
) -> None:
    """vLLM's OpenAI server streams `data: {...}` lines and ends with `data: [DONE]`."""
    events = b"data: " + _chunk("Bonjour").rstrip() + b"\n\ndata: [DONE]\n\n"
    runtime.answer([payload_part(events)])
    conversation = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]
    messages = tmp_path / "chat.json"
    messages.write_text(json.dumps(conversation))
    result = runner.invoke(
        app, ["invoke", "--endpoint", "chat", "--stream", "--messages", str(messages)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "Bonjour\n"
    assert json.loads(runtime.requests[0]["body"])["messages"] == conversation


def test_fails_when_the_model_stream_breaks_midway(runtime: FakeRuntime) -> None:
    runtime.answer([payload_part(_chunk("Hel")), model_stream_error("connection reset")])
    result = runner.invoke(app, ["invoke", "--endpoint", "chat", "--stream", "--prompt", "Hi"])
    assert result.exit_code == 1
    assert result.stdout == "Hel\n"
    assert " ".join(result.stderr.split()) == "the model's stream failed: connection reset"


def test_fails_when_the_endpoint_is_not_found(runtime: FakeRuntime) -> None:
    error = {"__type": "ValidationError", "message": "Endpoint nope of account x not found."}
    runtime.answer([json.dumps(error).encode()], status=400)
    result = runner.invoke(app, ["invoke", "--endpoint", "nope", "--stream", "--prompt", "Hi"])
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        "endpoint 'nope' not found in us-east-1: Endpoint nope of account x not found. Fix: use "
        "the stack's EndpointName output and the stack's region (--region)"
    )


def test_fails_when_the_engine_streams_an_error(runtime: FakeRuntime) -> None:
    runtime.answer([payload_part(b'{"error": {"message": "prompt too long"}}\n')])
    result = runner.invoke(app, ["invoke", "--endpoint", "chat", "--stream", "--prompt", "Hi"])
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        "the model reported an error in its stream: prompt too long"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--stream"],
            "invoke --stream: give exactly one of --prompt TEXT or --messages FILE (or --input "
            "FILE with your own request body)",
        ),
        (
            ["--stream", "--prompt", "Hi", "--max-tokens", "0"],
            "invoke --stream: --max-tokens 0: must be at least 1",
        ),
        (
            ["--prompt", "Hi"],
            "--prompt/--messages need --stream: they build a streamed chat request",
        ),
        ([], "--input is required: Fix: pass --input FILE, or --stream with --prompt TEXT"),
    ],
)
def test_fails_when_the_request_options_do_not_fit(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["invoke", "--endpoint", "chat", *args])
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == message


def test_fails_when_the_messages_file_is_not_a_conversation(tmp_path: Path) -> None:
    messages = tmp_path / "chat.json"
    messages.write_text('{"role": "user"}')
    result = runner.invoke(
        app, ["invoke", "--endpoint", "chat", "--stream", "--messages", str(messages)]
    )
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == (
        f"invoke --stream: --messages {messages}: expected a non-empty JSON list of objects "
        'with string `role` and `content`, e.g. [{"role": "user", "content": "Hi"}] (or '
        '{"messages": [...]})'
    )


def test_token_text_reads_lmi_token_lines_and_keeps_a_split_line() -> None:
    text = TokenText()
    assert text.feed(b'{"token": {"text": "a"}}\n{"token": {"te') == "a"
    assert text.feed(b'xt": "b"}}') == ""
    assert text.finish() == "b"
    assert text.chunks == 2
