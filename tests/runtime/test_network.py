"""Hostile and careless clients over raw sockets: limits, timeouts, pipelining, upgrades, drain.

Every answer here is checked byte-for-byte off the wire, so what a load balancer or a curious
attacker sees is what is asserted. Timeouts are set to 1 s where a test waits for one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, running_server

ECHO = "/v2/models/echo/infer"
BODY = json.dumps(
    {"inputs": [{"name": "INPUT__0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
).encode()
PING = b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
FAST = {"INF3KIT_HEADER_TIMEOUT_SECONDS": "1", "INF3KIT_BODY_TIMEOUT_SECONDS": "1"}


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: t", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> object:
        assert self.headers["content-type"] == "application/json", self.headers
        return json.loads(self.body)


def parse(data: bytes) -> list[Response]:
    """Split a byte stream into responses (every answer here carries Content-Length)."""
    out = []
    while data:
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {head!r}"
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        body, data = data[:length], data[length:]
        out.append(Response(int(lines[0].split()[1]), headers, body))
    return out


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    return sock


def exchange(server: ServerProcess, data: bytes, *, half_close: bool = False) -> list[Response]:
    """Send ``data``, then read until the server closes the connection."""
    with connect(server) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return parse(read_to_close(sock))


def read_to_close(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_one(sock: socket.socket) -> Response:
    data = b""
    while True:
        data += sock.recv(65536)
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int(next(
                line.split(b":")[1] for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ))  # fmt: skip
            if len(rest) >= length:
                return parse(data)[0]


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def metric(server: ServerProcess, line_start: str) -> float:
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    raise AssertionError(f"no metric line starts with {line_start}")


@pytest.fixture(scope="module")
def strict(echo_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("strict") / "server.log"
    with running_server(echo_bundle, log, **FAST) as server:
        yield server


# --- 1. header limits ----------------------------------------------------------------------------


def test_fails_when_the_request_head_exceeds_16_kib(strict: ServerProcess) -> None:
    big = "X-Big: " + "a" * 20_000
    [answer] = exchange(strict, f"GET /ping HTTP/1.1\r\nHost: t\r\n{big}\r\n\r\n".encode())
    assert answer.status == 431
    assert answer.headers["connection"] == "close"
    assert answer.json() == {
        "error": "the request head is larger than 16384 bytes (INF3KIT_MAX_HEADER_BYTES); "
        "send fewer or smaller headers"
    }


def test_fails_when_a_header_never_ends(strict: ServerProcess) -> None:
    """A header line streamed without end is cut at the limit, not buffered without bound."""
    with connect(strict) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nX-Endless: ")
        with pytest.raises(OSError):  # the server answers and closes while we still send
            for _ in range(64):
                sock.sendall(b"a" * 65536)
        answer = parse(read_to_close(sock))
    assert [a.status for a in answer] in ([431], [])  # the 431 may be lost to the reset
    assert httpx.get(strict.url + "/ping").status_code == 200


def test_fails_when_there_are_more_than_100_header_fields(strict: ServerProcess) -> None:
    fields = "".join(f"X-{i}: 1\r\n" for i in range(101))
    [answer] = exchange(strict, f"GET /ping HTTP/1.1\r\n{fields}\r\n".encode())
    assert answer.status == 431
    assert answer.json() == {
        "error": "more than 100 header fields (INF3KIT_MAX_HEADER_COUNT); send fewer headers"
    }


# --- 2. slow and idle clients --------------------------------------------------------------------


def test_fails_when_the_request_head_arrives_too_slowly(strict: ServerProcess) -> None:
    [answer] = exchange(strict, b"GET /ping HTTP/1.1\r\nHost: t\r\n")
    assert answer.status == 408
    assert answer.headers["connection"] == "close"
    assert answer.json() == {
        "error": "the request head did not arrive within 1 s (INF3KIT_HEADER_TIMEOUT_SECONDS)"
    }


def test_fails_when_the_body_stalls(strict: ServerProcess) -> None:
    head = post(ECHO, BODY)[: -len(BODY)]
    [answer] = exchange(strict, head + BODY[:10])
    assert answer.status == 408
    assert answer.headers["connection"] == "close"
    assert answer.json() == {
        "error": "no request body bytes for 1 s (INF3KIT_BODY_TIMEOUT_SECONDS); "
        "send the body without pauses"
    }


def test_a_connection_that_sends_nothing_is_closed(strict: ServerProcess) -> None:
    with connect(strict) as sock:
        assert read_to_close(sock) == b""  # closed without an answer: nothing was asked


def test_an_idle_keep_alive_connection_is_closed(echo_bundle: Path, tmp_path: Path) -> None:
    env = {"INF3KIT_KEEPALIVE_TIMEOUT_SECONDS": "1"}
    with running_server(echo_bundle, tmp_path / "log", **env) as server, connect(server) as sock:
        sock.sendall(PING)
        assert read_one(sock).status == 200
        assert read_to_close(sock) == b""
        assert metric(server, 'inf3kit_connection_events_total{event="idle_timeout"}') >= 1


def test_many_idle_connections_never_fail_the_health_check(
    echo_bundle: Path, tmp_path: Path
) -> None:
    """Past the limit the oldest idle connection makes room; busy ones get a prompt 503."""
    env = {"INF3KIT_MAX_CONNECTIONS": "8"}
    with running_server(echo_bundle, tmp_path / "log", **env) as server:
        idle = [connect(server) for _ in range(40)]
        try:
            assert httpx.get(server.url + "/ping").json() == {"status": "ready"}
            assert httpx.post(server.url + ECHO, content=BODY).status_code == 200
            busy = [connect(server) for _ in range(8)]
            for sock in busy:
                sock.sendall(b"GET /ping HTTP/1.1\r\n")  # an unfinished head: not idle
            ping = httpx.get(server.url + "/ping")
            refused = httpx.post(server.url + ECHO, content=BODY)
            for sock in busy:
                sock.close()
        finally:
            for sock in idle:
                sock.close()
        assert ping.status_code == 200
        assert refused.status_code == 503
        assert refused.headers["connection"] == "close"
        assert refused.json() == {
            "error": "the server has 8 connections open (INF3KIT_MAX_CONNECTIONS); "
            "retry, reusing a connection"
        }
        assert metric(server, 'inf3kit_connection_events_total{event="evicted_idle"}') >= 32


# --- 4. protocol edges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "protocol"),
    [
        (
            b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            "websocket",
        ),
        (post(ECHO, BODY, "Connection: Upgrade", "Upgrade: websocket"), "websocket"),
        (post(ECHO, BODY, "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c"), "h2c"),
    ],
    ids=["websocket-ping", "websocket-infer", "h2c-infer"],
)
def test_fails_when_a_client_asks_to_upgrade(
    strict: ServerProcess, request_bytes: bytes, protocol: str
) -> None:
    [answer] = exchange(strict, request_bytes)
    assert answer.status == 400
    assert answer.headers["connection"] == "close"
    assert answer.json() == {
        "error": f"this server speaks HTTP/1.1 only and does not upgrade to {protocol!r}; "
        "send the request without Upgrade"
    }


def test_pipelined_requests_are_answered_before_the_garbage_after_them(
    strict: ServerProcess,
) -> None:
    answers = exchange(strict, PING + post(ECHO, BODY) + PING + b"NOT HTTP AT ALL\r\n\r\n")
    assert [a.status for a in answers] == [200, 200, 200, 400]
    assert answers[1].json()["outputs"][0]["data"] == [3.0, 5.0, 7.0, 9.0]  # type: ignore[index]
    assert answers[3].headers["connection"] == "close"
    assert answers[3].json() == {"error": "malformed HTTP request: Invalid method encountered"}


def test_a_short_content_length_answers_the_request_then_refuses_the_rest(
    strict: ServerProcess,
) -> None:
    short = post(ECHO, BODY).replace(
        f"Content-Length: {len(BODY)}".encode(), f"Content-Length: {len(BODY) - 9}".encode()
    )
    answers = exchange(strict, PING + short)
    assert [a.status for a in answers] == [200, 400, 400]
    assert answers[1].json() == {"error": "request body is not valid JSON (line 1, column 85)"}
    assert answers[2].json() == {"error": "malformed HTTP request: Invalid method encountered"}


def test_expect_100_continue_is_answered_before_the_body(strict: ServerProcess) -> None:
    head = post(ECHO, BODY, "Expect: 100-continue")[: -len(BODY)]
    with connect(strict) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        assert read_one(sock).status == 200


def test_a_half_closed_client_still_gets_every_answer(strict: ServerProcess) -> None:
    answers = exchange(strict, PING + post(ECHO, BODY) + PING, half_close=True)
    assert [a.status for a in answers] == [200, 200, 200]


def test_a_client_leaving_after_pipelining_is_counted_not_logged(
    echo_bundle: Path, tmp_path: Path
) -> None:
    env = {"INF3KIT_SIMULATED_DEVICE_MS": "200"}
    with running_server(echo_bundle, tmp_path / "log", **env) as server:
        for _ in range(5):
            with connect(server) as sock:
                sock.sendall(post(ECHO, BODY) * 10)
        disconnects = 'inf3kit_connection_events_total{event="client_disconnect"}'
        wait_for(lambda: metric(server, disconnects) >= 5, "5 disconnects counted")
        assert httpx.get(server.url + "/ping").status_code == 200
    assert "Traceback" not in (tmp_path / "log").read_text()


# --- 6. routes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "allow", "error"),
    [
        ("GET", "/invocations", 405, "POST", "/invocations accepts POST, not GET"),
        ("PUT", "/invocations", 405, "POST", "/invocations accepts POST, not PUT"),
        ("PROPFIND", "/ping", 405, "GET, HEAD", "/ping accepts GET, not PROPFIND"),
        ("DELETE", ECHO, 405, "POST", f"{ECHO} accepts POST, not DELETE"),
        ("POST", "/v2/models/echo/bogus", 404, None, "no route '/v2/models/echo/bogus'"),
        ("GET", "/v2/models/echo/bogus", 404, None, "no route '/v2/models/echo/bogus'"),
        (
            "POST",
            "/v2/models/echo/versions//infer",
            404,
            None,
            "no route '/v2/models/echo/versions//infer'",
        ),
    ],
)
def test_fails_when_route_or_method_is_wrong(
    strict: ServerProcess, method: str, path: str, status: int, allow: str | None, error: str
) -> None:
    with connect(strict) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n".encode())
        answer = read_one(sock)
    assert answer.status == status
    assert answer.headers.get("allow") == allow
    assert answer.json() == {"error": error}


def test_fails_when_the_method_is_not_http(strict: ServerProcess) -> None:
    [answer] = exchange(strict, b"BREW /ping HTTP/1.1\r\nHost: t\r\n\r\n")
    assert answer.status == 400
    assert answer.json() == {"error": "malformed HTTP request: Invalid method encountered"}


def test_every_failure_reason_is_counted(strict: ServerProcess) -> None:
    line = 'inf3kit_request_failure_total{model="echo",reason="%s"}'
    before = {r: metric(strict, line % r) for r in ("not_found", "method_not_allowed")}
    httpx.get(strict.url + "/nowhere")
    httpx.get(strict.url + "/invocations")
    assert metric(strict, line % "not_found") == before["not_found"] + 1
    assert metric(strict, line % "method_not_allowed") == before["method_not_allowed"] + 1


# --- 3. draining ---------------------------------------------------------------------------------


def test_draining_closes_idle_connections_and_says_close(echo_bundle: Path, tmp_path: Path) -> None:
    server = ServerProcess(echo_bundle, tmp_path / "log")
    try:
        server.wait_ready()
        idle, active = connect(server), connect(server)
        for sock in (idle, active):
            sock.sendall(PING)
            assert read_one(sock).status == 200
        active.sendall(b"GET /ping HTTP/1.1\r\n")  # mid-request when the drain starts
        server.proc.send_signal(signal.SIGTERM)
        assert read_to_close(idle) == b""
        active.sendall(b"Host: t\r\n\r\n")
        [answer] = parse(read_to_close(active))
        assert answer.status == 503
        assert answer.headers["connection"] == "close"
        assert answer.headers["retry-after"] == "1"
        assert server.proc.wait(timeout=20) == 0
    finally:
        server.stop()


def test_a_stalled_upload_does_not_hold_the_drain(echo_bundle: Path, tmp_path: Path) -> None:
    server = ServerProcess(echo_bundle, tmp_path / "log", INF3KIT_GRACE_SECONDS="60")
    try:
        server.wait_ready()
        with connect(server) as sock:
            sock.sendall(post(ECHO, BODY)[:-20])
            wait_for(lambda: metric(server, "inf3kit_inflight_requests") >= 1, "upload started")
            server.proc.send_signal(signal.SIGTERM)
            [answer] = parse(read_to_close(sock))
        assert answer.status == 408
        assert answer.json() == {
            "error": "no request body bytes for 1 s (INF3KIT_BODY_TIMEOUT_SECONDS); "
            "send the body without pauses"
        }
        assert server.proc.wait(timeout=20) == 0  # well inside the 60 s grace
        assert "Traceback" not in server.log()
        assert "CancelledError" not in server.log()
    finally:
        server.stop()


# --- 11. several processes -----------------------------------------------------------------------


def children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_processes_share_the_port_aggregate_metrics_and_replace_the_dead(
    echo_bundle: Path, tmp_path: Path
) -> None:
    env = {
        "INF3KIT_PROCESSES": "2",
        "INF3KIT_WORKERS": "4",
        "INF3KIT_SIMULATED_DEVICE_MS": "1",
    }
    server = ServerProcess(echo_bundle, tmp_path / "log", **env)
    try:
        server.wait_ready()
        first = children(server.proc.pid)
        assert len(first) == 2
        assert metric(server, "inf3kit_workers") == 4  # 2 + 2, summed over the processes
        for _ in range(20):  # new connections, spread over both processes
            assert httpx.post(server.url + ECHO, content=BODY).status_code == 200
        success = 'inf3kit_request_success_total{model="echo"}'
        assert metric(server, success) == 20
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(children(server.proc.pid) - first) == 1, "a replacement process")
        server.wait_ready()
        assert metric(server, "inf3kit_workers") == 4
        assert metric(server, success) == 20  # the dead process's counts are kept
        survivors = children(server.proc.pid)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in survivors)
    finally:
        server.stop()
    log = (tmp_path / "log").read_text()
    assert f"server process 0 (pid {victim}) exited with -9" in log or (
        f"server process 1 (pid {victim}) exited with -9" in log
    )
