"""A table of bad requests: each gets its exact status and JSON message, and the server lives."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import TINY, ServerProcess, running_server

from inf3kit.runtime.commands import compile_bundle

INFER = "/v2/models/sentiment/infer"
GOOD_DATA = [0.5] * 32


def oip(**tensor: object) -> bytes:
    base = {"name": "INPUT__0", "datatype": "FP32", "shape": [1, 32], "data": GOOD_DATA}
    base.update(tensor)
    return json.dumps({"inputs": [base]}).encode()


def binary(
    header: dict[str, object], payload: bytes, declared: int | None = None
) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    length = len(head) if declared is None else declared
    return head + payload, {"Inference-Header-Content-Length": str(length)}


FOUR_FLOATS = struct.pack("<32f", *GOOD_DATA)
BIN_HEADER = {
    "inputs": [
        {
            "name": "INPUT__0",
            "datatype": "FP32",
            "shape": [1, 32],
            "parameters": {"binary_data_size": 128},
        }
    ]
}

HALF_SIZE = {"inputs": [{**BIN_HEADER["inputs"][0], "parameters": {"binary_data_size": 64}}]}
BIN_LENGTH = len(binary(BIN_HEADER, FOUR_FLOATS)[0])

CASES: list[tuple[str, str, str, bytes, dict[str, str], int, str]] = [
    ("not json", "POST", INFER, b"{nope", {}, 400,
     "request body is not valid JSON (line 1, column 2)"),
    ("json array", "POST", INFER, b"[1, 2]", {}, 400,
     "the request must be a JSON object with an 'inputs' list"),
    ("no inputs", "POST", INFER, b"{}", {}, 400, "the request needs a non-empty 'inputs' list"),
    ("empty inputs", "POST", INFER, b'{"inputs": []}', {}, 400,
     "the request needs a non-empty 'inputs' list"),
    ("input not object", "POST", INFER, b'{"inputs": [3]}', {}, 400,
     "each entry of 'inputs' must be an object with name, datatype, shape, data"),
    ("unknown input", "POST", INFER, oip(name="TEXT"), {}, 400,
     "unknown input 'TEXT'; the model's inputs are ['INPUT__0']"),
    ("no name", "POST", INFER, b'{"inputs": [{"datatype": "FP32"}]}', {}, 400,
     "an input has no 'name' string"),
    ("wrong dtype", "POST", INFER, oip(datatype="FP64"), {}, 400,
     "input 'INPUT__0': datatype 'FP64' does not match the model's 'FP32'"),
    ("wrong inner shape", "POST", INFER, oip(shape=[1, 31]), {}, 400,
     "input 'INPUT__0': shape [1, 31] does not match the model's [-1, 32] (batch dimension first)"),
    ("missing batch dim", "POST", INFER, oip(shape=[32]), {}, 400,
     "input 'INPUT__0': shape [32] does not match the model's [-1, 32] (batch dimension first)"),
    ("zero batch", "POST", INFER, oip(shape=[0, 32], data=[]), {}, 400,
     "input 'INPUT__0': batch dimension 0 must be at least 1"),
    ("shape not ints", "POST", INFER, oip(shape=[1, "32"]), {}, 400,
     "input 'INPUT__0': 'shape' must be a list of integers"),
    ("too few values", "POST", INFER, oip(data=[0.5] * 31), {}, 400,
     "input 'INPUT__0': 'data' has 31 elements, shape [1, 32] needs 32"),
    ("strings as data", "POST", INFER, oip(data=["x"] * 32), {}, 400,
     "input 'INPUT__0': 'data' value 'x' at position 0 is not a number"),
    ("string nan", "POST", INFER, oip(data=[*GOOD_DATA[:5], "nan", *GOOD_DATA[6:]]), {}, 400,
     "input 'INPUT__0': 'data' value 'nan' at position 5 is not a number"),
    ("numeric string", "POST", INFER, oip(data=["0.5", *GOOD_DATA[1:]]), {}, 400,
     "input 'INPUT__0': 'data' value '0.5' at position 0 is not a number"),
    ("boolean among numbers", "POST", INFER, oip(data=[*GOOD_DATA[:31], True]), {}, 400,
     "input 'INPUT__0': 'data' value True at position 31 is not a number"),
    ("null nested", "POST", INFER, oip(shape=[2, 32], data=[GOOD_DATA, [*GOOD_DATA[:3], None,
     *GOOD_DATA[4:]]]), {}, 400,
     "input 'INPUT__0': 'data' value None at position [1, 3] is not a number"),
    ("fp32 overflow", "POST", INFER, oip(data=[*GOOD_DATA[:7], -1e39, *GOOD_DATA[8:]]), {}, 400,
     "input 'INPUT__0': 'data' value -1e+39 at position 7 is outside the FP32 range"),
    ("sagemaker null", "POST", "/invocations", json.dumps([[None, *GOOD_DATA[1:]]]).encode(), {},
     400, "instances for 'INPUT__0': value None at position [0, 0] is not a number"),
    ("sagemaker boolean", "POST", "/invocations", json.dumps([GOOD_DATA, [True] * 32]).encode(),
     {}, 400, "instances for 'INPUT__0': value True at position [1, 0] is not a number"),
    ("sagemaker overflow", "POST", "/invocations", json.dumps([[1e300] * 32]).encode(), {}, 400,
     "instances for 'INPUT__0': value 1e+300 at position [0, 0] is outside the FP32 range"),
    ("ragged data", "POST", INFER, oip(shape=[2, 32], data=[GOOD_DATA, GOOD_DATA[1:]]), {}, 400,
     "input 'INPUT__0': 'data' is not a (nested) list of FP32 values"),
    ("no data", "POST", INFER, oip(data=None) .replace(b', "data": null', b""), {}, 400,
     "input 'INPUT__0': no 'data' and no binary_data_size parameter"),
    ("duplicate input", "POST", INFER,
     json.dumps({"inputs": [json.loads(oip())["inputs"][0]] * 2}).encode(), {}, 400,
     "input 'INPUT__0' is given more than once"),
    ("unknown output", "POST", INFER,
     json.dumps({**json.loads(oip()), "outputs": [{"name": "LOGITS"}]}).encode(), {}, 400,
     "unknown output 'LOGITS'; the model's outputs are ['OUTPUT__0']"),
    ("bad timeout", "POST", INFER,
     json.dumps({**json.loads(oip()), "parameters": {"timeout": -5}}).encode(), {}, 400,
     "parameter 'timeout' must be a positive integer number of microseconds"),
    ("shared memory", "POST", INFER,
     oip(parameters={"shared_memory_region": "r"}), {}, 400,
     "input 'INPUT__0': shared memory is not supported; send the data in the body"),
    ("binary size mismatch", "POST", INFER,
     *binary(HALF_SIZE, FOUR_FLOATS), 400,
     "input 'INPUT__0': binary_data_size 64 does not match shape [1, 32] of FP32 (128 bytes)"),
    ("binary truncated", "POST", INFER, *binary(BIN_HEADER, FOUR_FLOATS[:100]), 400,
     "input 'INPUT__0': binary_data_size 128 runs past the end of the body (100 bytes left)"),
    ("binary trailing bytes", "POST", INFER, *binary(BIN_HEADER, FOUR_FLOATS + b"xx"), 400,
     "2 trailing byte(s) after the binary tensors"),
    ("header length past body", "POST", INFER,
     *binary(BIN_HEADER, FOUR_FLOATS, declared=10_000), 400,
     f"Inference-Header-Content-Length 10000 is outside the body length 1..{BIN_LENGTH}"),
    ("header length not int", "POST", INFER, oip(), {"Inference-Header-Content-Length": "ten"}, 400,
     "Inference-Header-Content-Length must be an integer, got b'ten'"),
    ("octet-stream without header", "POST", INFER, FOUR_FLOATS,
     {"Content-Type": "application/octet-stream"}, 400,
     "application/octet-stream needs an Inference-Header-Content-Length header"),
    ("wrong content type", "POST", INFER, oip(), {"Content-Type": "text/csv"}, 415,
     "Content-Type 'text/csv' is not supported; send application/json, or application/octet-stream "
     "with Inference-Header-Content-Length (binary tensors)"),
    ("unknown model", "POST", "/v2/models/other/infer", oip(), {}, 404,
     "unknown model 'other'; this server serves 'sentiment' version '1'"),
    ("unknown version", "GET", "/v2/models/sentiment/versions/7", b"", {}, 404,
     "unknown model 'sentiment/versions/7'; this server serves 'sentiment' version '1'"),
    ("unknown route", "GET", "/v3/whatever", b"", {}, 404, "no route '/v3/whatever'"),
    ("infer with GET", "GET", INFER, b"", {}, 405, f"{INFER} accepts POST, not GET"),
    ("too large declared", "POST", INFER, b"x" * 5000, {}, 413,
     "body of 5000 bytes exceeds the 4096 byte limit"),
    ("sagemaker empty list", "POST", "/invocations", b"[]", {}, 400,
     'expected {"inputs": [...]} (Open Inference Protocol), {"instances": [...]} or a non-empty '
     "JSON list of instances"),
    ("sagemaker wrong instance shape", "POST", "/invocations", b"[[1, 2, 3]]", {}, 400,
     "instances for 'INPUT__0' must each have shape [32] (32 values)"),
    ("sagemaker csv short row", "POST", "/invocations", b"1,2,3", {"Content-Type": "text/csv"},
     400, "CSV line 1: 3 values, the model takes 32 per record (INPUT__0: 32 FP32)"),
    ("sagemaker form", "POST", "/invocations", b"a=1", {"Content-Type":
     "application/x-www-form-urlencoded"}, 415,
     "Content-Type 'application/x-www-form-urlencoded' is not supported; send application/json, "
     "text/csv, application/jsonlines, application/x-npy, or application/octet-stream with "
     "Inference-Header-Content-Length (binary tensors)"),
    ("sagemaker accept xml", "POST", "/invocations", json.dumps([GOOD_DATA]).encode(),
     {"Accept": "application/xml"}, 406,
     "Accept 'application/xml' names no answer format this server writes; accept one of "
     "application/json, text/csv, application/jsonlines"),
]  # fmt: skip


INT_INFER = "/v2/models/ints/infer"


def ints(a: Sequence[int] = (1, 2), b: Sequence[int] = (3, 4)) -> bytes:
    tensors = [
        {"name": "a", "datatype": "INT32", "shape": [1, 2], "data": list(a)},
        {"name": "b", "datatype": "UINT8", "shape": [1, 2], "data": list(b)},
    ]
    return json.dumps({"inputs": tensors}).encode()


def instances(a: Sequence[int] = (1, 2), b: Sequence[int] = (3, 4)) -> bytes:
    return json.dumps({"instances": [{"a": list(a), "b": list(b)}]}).encode()


# Integers outside the datatype's range (numpy raises OverflowError): 400, not 500.
INT_CASES: list[tuple[str, str, str, bytes, dict[str, str], int, str]] = [
    ("int32 too large", "POST", INT_INFER, ints(a=[2**40, 0]), {}, 400,
     "input 'a': 'data' value 1099511627776 at position 0 is outside the INT32 range"),
    ("int32 too small", "POST", INT_INFER, ints(a=[0, -(2**31) - 1]), {}, 400,
     "input 'a': 'data' value -2147483649 at position 1 is outside the INT32 range"),
    ("uint8 negative", "POST", INT_INFER, ints(b=[-1, 0]), {}, 400,
     "input 'b': 'data' value -1 at position 0 is outside the UINT8 range"),
    ("uint8 too large", "POST", INT_INFER, ints(b=[0, 256]), {}, 400,
     "input 'b': 'data' value 256 at position 1 is outside the UINT8 range"),
    ("int beyond 64 bits", "POST", INT_INFER, ints(a=[0, 2**70]), {}, 400,
     "input 'a': 'data' value 1.1805916207174113e+21 at position 1 is outside the INT32 range"),
    ("fraction for an integer", "POST", INT_INFER, ints(a=[1, 2.5]), {}, 400,
     "input 'a': 'data' value 2.5 at position 1 is not an integer"),
    ("boolean for an integer", "POST", INT_INFER, ints(b=[True, 0]), {}, 400,
     "input 'b': 'data' value True at position 0 is not a number"),
    ("sagemaker int32 too large", "POST", "/invocations", instances(a=[2**40, 0]), {}, 400,
     "instances for 'a': value 1099511627776 at position [0, 0] is outside the INT32 range"),
    ("sagemaker uint8 negative", "POST", "/invocations", instances(b=[0, -1]), {}, 400,
     "instances for 'b': value -1 at position [0, 1] is outside the UINT8 range"),
]  # fmt: skip


@pytest.fixture(scope="module")
def small_body_server(demo_bundle, tmp_path_factory):  # type: ignore[no-untyped-def]
    log = tmp_path_factory.mktemp("logs") / "bad-inputs.log"
    with running_server(demo_bundle, log, INF3KIT_MAX_BODY_BYTES="4096") as server:
        yield server


@pytest.fixture(scope="module")
def int_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out: Path = tmp_path_factory.mktemp("ints") / "bundle"
    compile_bundle(f"{TINY}:int_sum", ["a:INT32:2", "b:UINT8:2"], out, batch_size=2, name="ints")
    log = tmp_path_factory.mktemp("logs") / "int-inputs.log"
    with running_server(out, log) as server:
        yield server


def answer(
    server: ServerProcess, method: str, path: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    headers = {"Content-Type": "application/json", **headers}
    return httpx.request(method, server.url + path, content=body or None, headers=headers)


def failures(server: ServerProcess, model: str, reason: str) -> float:
    name = f'inf3kit_request_failure_total{{model="{model}",reason="{reason}"}}'
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"metric {name} not found")


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_request_is_answered_exactly(
    small_body_server: ServerProcess,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    r = answer(small_body_server, method, path, body, headers)
    assert (r.status_code, r.json()) == (status, {"error": message})
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "message"),
    [case[1:] for case in INT_CASES],
    ids=[case[0] for case in INT_CASES],
)
def test_out_of_range_integer_is_answered_exactly(
    int_server: ServerProcess,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    r = answer(int_server, method, path, body, headers)
    assert (r.status_code, r.json()) == (status, {"error": message})
    assert r.headers["content-type"] == "application/json"


def test_int_server_still_answers_after_out_of_range_integers(int_server: ServerProcess) -> None:
    before = failures(int_server, "ints", "bad_request")
    for case in INT_CASES:
        assert answer(int_server, *case[1:5]).status_code == 400
    assert failures(int_server, "ints", "bad_request") == before + len(INT_CASES)
    assert failures(int_server, "ints", "internal") == 0
    r = httpx.post(int_server.url + INT_INFER, content=ints(a=[2**31 - 1, -(2**31)], b=[0, 255]))
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [2**31 - 1, -(2**31) + 255]


def test_true_elsewhere_in_the_body_leaves_numbers_alone(small_body_server: ServerProcess) -> None:
    """A ``true`` token outside the data (parameters) takes the boolean check; numbers pass."""
    body = json.loads(oip())
    body["outputs"] = [{"name": "OUTPUT__0", "parameters": {"binary_data": False}}]
    body["parameters"] = {"binary_data_output": True}
    r = httpx.post(small_body_server.url + INFER, content=json.dumps(body))
    assert r.status_code == 200, r.text
    assert np.isclose(sum(r.json()["outputs"][0]["data"]), 1.0)


def test_body_over_limit_while_streaming(small_body_server: ServerProcess) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(16):
            yield b"x" * 512

    r = httpx.post(small_body_server.url + INFER, content=chunks())
    assert (r.status_code, r.json()) == (413, {"error": "body exceeds the 4096 byte limit"})


def test_server_still_answers_after_bad_requests(small_body_server: ServerProcess) -> None:
    before = failures(small_body_server, "sentiment", "bad_request")
    for case in CASES:
        assert answer(small_body_server, *case[1:5]).status_code == case[5], case[0]
    assert httpx.get(small_body_server.url + "/ping").status_code == 200
    r = httpx.post(small_body_server.url + INFER, content=oip())
    assert r.status_code == 200
    assert np.isclose(sum(r.json()["outputs"][0]["data"]), 1.0)
    # Every 400 in the table reached inference (404/405 are routing, before it), so each counts.
    bad_requests = sum(1 for case in CASES if case[5] == 400)
    assert failures(small_body_server, "sentiment", "bad_request") == before + bad_requests
