"""SageMaker Batch Transform bodies over a real socket: CSV, JSON Lines, .npy, Accept."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import ServerProcess, running_server

INVOKE = "/invocations"


@pytest.fixture(scope="module")
def echo(echo_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(echo_bundle, tmp_path_factory.mktemp("logs") / "transform.log") as server:
        yield server


@pytest.fixture(scope="module")
def multi(multi_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(multi_bundle, tmp_path_factory.mktemp("logs") / "multi.log") as server:
        yield server


def csv_text(x: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savetxt(buffer, x, delimiter=",", fmt="%.7g")
    return buffer.getvalue()


def post(server: ServerProcess, body: bytes, content_type: str, accept: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    return httpx.post(server.url + INVOKE, content=body, headers=headers, timeout=120)


def test_a_6mb_csv_mini_batch_is_answered_line_for_line_in_order(echo: ServerProcess) -> None:
    """As Batch Transform sends it: SplitType Line, BatchStrategy MultiRecord, ~6 MB."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1000, 1000, size=(150_000, 4)).astype(np.float32)
    body = csv_text(x)
    assert 5_500_000 < len(body) < 6_500_000  # MaxPayloadInMB 6
    r = post(echo, body, "text/csv", "text/csv")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "text/csv"
    lines = r.content.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 150_001  # one line per record, newline-terminated
    out = np.loadtxt(io.BytesIO(r.content), delimiter=",", dtype=np.float32)
    sent = np.loadtxt(io.BytesIO(body), delimiter=",").astype(np.float32)
    np.testing.assert_array_equal(out, 2 * sent + 1)


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [(None, "text/csv"), ("*/*", "text/csv"), ("text/csv", "text/csv"),
     ("application/jsonlines", "application/jsonlines"), ("application/json", "application/json"),
     ("text/html, application/jsonlines;q=0.9", "application/jsonlines")],
)  # fmt: skip
def test_accept_picks_the_answer_format(
    echo: ServerProcess, accept: str | None, content_type: str
) -> None:
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    r = post(echo, csv_text(x), "text/csv", accept)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == content_type
    want = 2 * x + 1
    if content_type == "text/csv":
        np.testing.assert_array_equal(np.loadtxt(io.BytesIO(r.content), delimiter=","), want)
    elif content_type == "application/jsonlines":
        rows = [json.loads(line) for line in r.content.splitlines()]
        np.testing.assert_array_equal(rows, want)
    else:
        np.testing.assert_array_equal(r.json()["predictions"], want)


def test_json_lines_in_answers_json_lines(echo: ServerProcess) -> None:
    x = np.arange(80, dtype=np.float32).reshape(20, 4)
    body = b"\n".join(json.dumps(row).encode() for row in x.tolist()) + b"\n"
    r = post(echo, body, "application/jsonlines")
    assert (r.status_code, r.headers["content-type"]) == (200, "application/jsonlines"), r.text
    np.testing.assert_array_equal([json.loads(x) for x in r.content.splitlines()], 2 * x + 1)


def test_npy_in_answers_json(echo: ServerProcess) -> None:
    x = np.arange(100, dtype=np.float32).reshape(25, 4)
    buffer = io.BytesIO()
    np.save(buffer, x)
    r = post(echo, buffer.getvalue(), "application/x-npy")
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(r.json()["predictions"], 2 * x + 1)


def test_tf_serving_inputs_form(echo: ServerProcess, multi: ServerProcess) -> None:
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    r = post(echo, json.dumps({"inputs": x.tolist()}).encode(), "application/json")
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(r.json()["predictions"], 2 * x + 1)
    columns = {"ids": [[1, 2, 3], [4, 5, 6]], "weights": [[1, 1, 1], [0.5, 0, 0]]}
    r = post(multi, json.dumps({"inputs": columns}).encode(), "application/json")
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [
        {"score": [6.0], "next_ids": [2, 3, 4]},
        {"score": [2.0], "next_ids": [5, 6, 7]},
    ]


def test_csv_for_two_inputs_takes_their_values_in_manifest_order(multi: ServerProcess) -> None:
    r = post(multi, b"1,2,3,1,1,1\n4,5,6,0.5,0,0\n", "text/csv")
    assert r.status_code == 200, r.text
    assert r.content == b"6.0,2.0,3.0,4.0\n2.0,5.0,6.0,7.0\n"


GOOD = b"1,2,3,4\n"
CSV_CASES = [
    ("letters", GOOD * 4 + b"1,x,3,4\n", "CSV line 5, column 2: 'x' is not a number"),
    ("short row", GOOD * 2 + b"1,2,3\n" + GOOD, "CSV line 3: 3 values, the model takes 4"),
    ("blank lines count", GOOD + b"\n\n" + b"1,2,,4\n", "CSV line 4, column 3: '' is not a number"),
    ("nan", GOOD * 3 + b"1,nan,3,4\n",
     "CSV line 4, column 2 (input 'INPUT__0'): value nan is not a finite number"),
    ("overflow", GOOD + b"1,2,3,1e39\n",
     "CSV line 2, column 4 (input 'INPUT__0'): value 1e+39 is outside the FP32 range"),
    ("header row", b"a,b,c,d\n" + GOOD, "CSV line 1, column 1: 'a' is not a number"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"), [c[1:] for c in CSV_CASES], ids=[c[0] for c in CSV_CASES]
)
def test_fails_when_a_csv_row_is_bad_naming_the_line(
    echo: ServerProcess, body: bytes, message: str
) -> None:
    r = post(echo, body, "text/csv")
    assert (r.status_code, r.json()) == (400, {"error": message})


def test_fails_when_an_integer_csv_column_holds_a_fraction(multi: ServerProcess) -> None:
    r = post(multi, b"1,2,3,1,1,1\n1.5,2,3,1,1,1\n", "text/csv")
    assert (r.status_code, r.json()) == (
        400,
        {"error": "CSV line 2, column 1 (input 'ids'): value 1.5 is not an integer"},
    )


def test_fails_when_a_json_line_is_bad_naming_the_line(echo: ServerProcess) -> None:
    r = post(echo, b"[1,2,3,4]\n[1,2,3,4]\n[1,2,\n", "application/jsonlines")
    assert r.status_code == 400
    assert r.json()["error"].startswith("JSON Lines line 3: not valid JSON (")
    r = post(echo, b"[1,2,3,4]\n\n[1,null,3,4]\n", "application/jsonlines")
    assert (r.status_code, r.json()) == (
        400,
        {"error": "JSON Lines line 3: input 'INPUT__0': value None at position 1 is not a number"},
    )


def test_fails_when_npy_is_sent_to_a_two_input_model(multi: ServerProcess) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 3)))
    r = post(multi, buffer.getvalue(), "application/x-npy")
    assert (r.status_code, r.json()) == (
        415,
        {
            "error": "application/x-npy carries one array, the model has inputs ['ids', "
            "'weights']; send JSON, JSON Lines or CSV"
        },
    )
