"""The Open Inference Protocol over gRPC, spoken by an unchanged ``tritonclient.grpc``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from conftest import ServerProcess, free_port, running_server
from tritonclient.utils import InferenceServerException

from inf3kit.runtime.grpc_proto import M


@pytest.fixture(scope="module")
def grpc_server(
    multi_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, grpcclient.InferenceServerClient]]:
    port = free_port()
    log = tmp_path_factory.mktemp("grpc") / "server.log"
    with running_server(multi_bundle, log, INF3KIT_GRPC_PORT=str(port)) as server:
        server.grpc_port = port  # type: ignore[attr-defined]
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
        yield server, client
        client.close()


def inputs(ids: np.ndarray, weights: np.ndarray) -> list[grpcclient.InferInput]:
    a = grpcclient.InferInput("ids", list(ids.shape), "INT64")
    a.set_data_from_numpy(ids)
    b = grpcclient.InferInput("weights", list(weights.shape), "FP32")
    b.set_data_from_numpy(weights)
    return [a, b]


def test_health_metadata_and_config(grpc_server: tuple[ServerProcess, object]) -> None:
    _, client = grpc_server
    assert isinstance(client, grpcclient.InferenceServerClient)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("multi") and not client.is_model_ready("other")
    assert client.get_server_metadata().name == "inf3kit"
    meta = client.get_model_metadata("multi", as_json=True)
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("ids", "INT64", ["-1", "3"]),
        ("weights", "FP32", ["-1", "3"]),
    ]
    config = client.get_model_config("multi", as_json=True)["config"]
    assert config["max_batch_size"] == 4
    assert [(t["name"], t["data_type"]) for t in config["input"]] == [
        ("ids", "TYPE_INT64"),
        ("weights", "TYPE_FP32"),
    ]


def test_infer_matches_http(grpc_server: tuple[ServerProcess, object]) -> None:
    server, client = grpc_server
    assert isinstance(client, grpcclient.InferenceServerClient)
    ids = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    weights = np.array([[0.5, 1.0, 2.0], [1.0, 1.0, 1.0]], dtype=np.float32)
    result = client.infer("multi", inputs(ids, weights), request_id="r1")
    assert result.get_response().id == "r1"
    import tritonclient.http as httpclient

    http = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    a = httpclient.InferInput("ids", [2, 3], "INT64")
    a.set_data_from_numpy(ids)
    b = httpclient.InferInput("weights", [2, 3], "FP32")
    b.set_data_from_numpy(weights)
    expected = http.infer("multi", [a, b])
    for name in ("score", "next_ids"):
        np.testing.assert_array_equal(result.as_numpy(name), expected.as_numpy(name))
    only = client.infer(
        "multi", inputs(ids, weights), outputs=[grpcclient.InferRequestedOutput("next_ids")]
    )
    assert only.as_numpy("score") is None
    np.testing.assert_array_equal(only.as_numpy("next_ids"), ids + 1)


@pytest.mark.parametrize(
    ("ids", "status", "message"),
    [
        (
            np.zeros((2, 4), dtype=np.int64),
            "StatusCode.INVALID_ARGUMENT",
            "input 'ids': shape [2, 4] does not match the model's [-1, 3] (batch dimension first)",
        ),
    ],
)
def test_fails_when_the_request_is_wrong(
    grpc_server: tuple[ServerProcess, object], ids: np.ndarray, status: str, message: str
) -> None:
    _, client = grpc_server
    assert isinstance(client, grpcclient.InferenceServerClient)
    weights = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(InferenceServerException) as err:
        client.infer("multi", inputs(ids, weights))
    assert err.value.status() == status
    assert err.value.message() == message


def test_fails_when_the_model_is_unknown(grpc_server: tuple[ServerProcess, object]) -> None:
    _, client = grpc_server
    assert isinstance(client, grpcclient.InferenceServerClient)
    with pytest.raises(InferenceServerException) as err:
        client.infer("other", inputs(np.zeros((1, 3), np.int64), np.zeros((1, 3), np.float32)))
    assert err.value.status() == "StatusCode.NOT_FOUND"
    assert err.value.message() == ("unknown model 'other'; this server serves 'multi' version '1'")


def test_typed_contents_are_accepted(grpc_server: tuple[ServerProcess, object]) -> None:
    """KServe clients may send typed ``contents`` rather than raw bytes (tritonclient cannot)."""
    import grpc

    server, _ = grpc_server
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")  # type: ignore[attr-defined]
    infer = channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=M["ModelInferRequest"].SerializeToString,
        response_deserializer=M["ModelInferResponse"].FromString,
    )
    request = M["ModelInferRequest"](model_name="multi")
    ids = request.inputs.add(name="ids", datatype="INT64", shape=[1, 3])
    ids.contents.int64_contents.extend([1, 2, 3])
    weights = request.inputs.add(name="weights", datatype="FP32", shape=[1, 3])
    weights.contents.fp32_contents.extend([1.0, 1.0, 1.0])
    response = infer(request)
    assert np.frombuffer(response.raw_output_contents[1], dtype=np.int64).tolist() == [2, 3, 4]
    channel.close()
