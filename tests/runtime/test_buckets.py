"""Shape buckets end to end: compile a two-input INT64 model for several lengths, serve it, and
see each request padded to the smallest bucket that fits, batched with its own bucket only,
and its sequence output cut back to its length."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import TINY, ServerProcess, running_server

from inf3kit.runtime.commands import compile_bundle
from inf3kit.runtime.compile import CompileError
from inf3kit.runtime.manifest import MANIFEST_NAME, read_manifest

INFER = "/v2/models/tokens/infer"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("buckets") / "bundle"
    compile_bundle(
        f"{TINY}:masked_tokens",
        ["ids:INT64:seq", "mask:INT64:seq"],
        out,
        batch_size=4,
        name="tokens",
        outputs=["tokens", "stats"],
        dims=["seq=8,16,32"],
        pads=["ids=7", "mask=0"],
    )
    return out


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(bundle, tmp_path_factory.mktemp("logs") / "buckets.log") as server:
        yield server


def test_compile_writes_a_variant_per_bucket_and_pads_in_a_format_2_manifest(bundle: Path) -> None:
    saved = json.loads((bundle / MANIFEST_NAME).read_text())
    assert saved["format_version"] == 2
    assert saved["inputs"] == [
        {"name": "ids", "datatype": "INT64", "shape": [32], "dynamic": {"0": "seq"}, "pad": 7},
        {"name": "mask", "datatype": "INT64", "shape": [32], "dynamic": {"0": "seq"}, "pad": 0},
    ]
    assert saved["outputs"] == [
        {"name": "tokens", "datatype": "INT64", "shape": [32], "dynamic": {"0": "seq"}},
        {"name": "stats", "datatype": "INT64", "shape": [2]},
    ]
    assert [(v["file"], v["dims"]) for v in saved["variants"]] == [
        ("model-cpu-b4-seq8.pt", {"seq": 8}),
        ("model-cpu-b4-seq16.pt", {"seq": 16}),
        ("model-cpu-b4-seq32.pt", {"seq": 32}),
    ]
    assert read_manifest(bundle).dim_names == ("seq",)


def test_a_bundle_without_buckets_stays_format_1(echo_bundle: Path) -> None:
    saved = json.loads((echo_bundle / MANIFEST_NAME).read_text())
    assert saved["format_version"] == 1
    assert "dynamic" not in saved["inputs"][0] and "dims" not in saved["variants"][0]


def request(length: int, rows: int = 1) -> dict[str, object]:
    ids = [
        [i + 1 + r for i in range(length)] for r in range(rows)
    ]  # no 7 at the start... see below
    ids = [[(v % 5) + 1 for v in row] for row in ids]  # values 1..5: never the pad value 7
    mask = [[1] * length for _ in range(rows)]
    return {
        "inputs": [
            {"name": "ids", "datatype": "INT64", "shape": [rows, length], "data": ids},
            {"name": "mask", "datatype": "INT64", "shape": [rows, length], "data": mask},
        ]
    }


@pytest.mark.parametrize(("length", "bucket"), [(1, 8), (8, 8), (10, 16), (17, 32), (32, 32)])
def test_a_request_is_padded_to_the_smallest_bucket_and_trimmed(
    server: ServerProcess, length: int, bucket: int
) -> None:
    body = request(length)
    r = httpx.post(server.url + INFER, json=body)
    assert r.status_code == 200, r.text
    tokens, stats = r.json()["outputs"]
    assert tokens["shape"] == [1, length]
    assert tokens["data"] == body["inputs"][0]["data"][0]  # type: ignore[index]
    # The padding the model saw: bucket - length positions of ids 7 and mask 0.
    assert stats["data"] == [bucket - length, bucket - length]


def test_mixed_lengths_at_once_are_batched_by_bucket(server: ServerProcess) -> None:
    lengths = [3, 20, 9, 5, 30, 12, 2, 16] * 4
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda n: httpx.post(server.url + INFER, json=request(n, 2), timeout=30), lengths
            )
        )
    for n, r in zip(lengths, answers, strict=True):
        assert r.status_code == 200, r.text
        tokens, stats = r.json()["outputs"]
        bucket = next(b for b in (8, 16, 32) if n <= b)
        assert tokens["shape"] == [2, n]
        assert stats["data"] == [bucket - n] * 4


def test_instances_and_metadata_for_a_bucketed_model(server: ServerProcess) -> None:
    instances = [{"ids": [1, 2, 3], "mask": [1, 1, 0]}, {"ids": [4, 5, 6], "mask": [1, 1, 1]}]
    r = httpx.post(server.url + "/invocations", json={"instances": instances})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [
        {"tokens": [1, 2, 0], "stats": [5, 6]},
        {"tokens": [4, 5, 6], "stats": [5, 5]},
    ]
    meta = httpx.get(server.url + "/v2/models/tokens").json()
    assert [t["shape"] for t in meta["inputs"] + meta["outputs"]] == [[-1, -1]] * 3 + [[-1, 2]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (request(33), "input 'ids': shape [1, 33] does not match the model's [-1, seq<=32] "
         "(batch dimension first)"),
        ({"inputs": [request(10)["inputs"][0], request(12)["inputs"][1]]},  # type: ignore[index]
         "inputs disagree on dimension 'seq': 10 and 12 (input 'mask')"),
    ],
    ids=["longer than the largest bucket", "lengths disagree"],
)  # fmt: skip
def test_fails_when_a_request_fits_no_bucket(
    server: ServerProcess, body: dict[str, object], message: str
) -> None:
    r = httpx.post(server.url + INFER, json=body)
    assert (r.status_code, r.json()) == (400, {"error": message})


def test_fails_when_a_dimension_has_no_values_or_one(tmp_path: Path) -> None:
    inputs = ["ids:INT64:seq", "mask:INT64:seq"]
    with pytest.raises(CompileError, match=r"--dim must give values for exactly .* \['seq'\]"):
        compile_bundle(f"{TINY}:masked_tokens", inputs, tmp_path)
    with pytest.raises(CompileError, match="--dim seq: give at least two values"):
        compile_bundle(f"{TINY}:masked_tokens", inputs, tmp_path, dims=["seq=16"])
