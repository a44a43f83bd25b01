"""`inf3kit llm compile`: everything up to the Neuron device.

The compile itself needs a Neuron device and vLLM for Neuron, neither of which exists here. The
tests check the request, the device check (a /dev folder of the test's making), the command and
environment the engine gets, the manifest, and the upload into moto's S3; the engine is a
stand-in `python` that does what the Neuron docs say the engine does with
NEURON_COMPILED_ARTIFACTS: it writes the compiled model there.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from inf3kit.cli import app
from inf3kit.runtime.llm_compile import (
    MANIFEST,
    CompileError,
    CompileRequest,
    compile_and_upload,
    compile_command,
    engine_settings,
    find_vllm,
    manifest_problems,
    require_neuron_device,
)

REVISION = "0123456789abcdef0123456789abcdef01234567"
BUCKET = "compiled-models"
ENGINE = f"""#!{sys.executable}
# Stand-in for the vLLM environment's python: records the engine arguments, then writes a
# compiled model into NEURON_COMPILED_ARTIFACTS as the engine does (or fails on request).
import json, os, pathlib, sys
out = pathlib.Path(os.environ["NEURON_COMPILED_ARTIFACTS"])
(out.parent / "engine.json").write_text(json.dumps({{"args": json.loads(sys.argv[3]),
    "cores": os.environ["NEURON_RT_VISIBLE_CORES"]}}))
if os.environ.get("ENGINE_FAILS"):
    sys.exit(3)
if not os.environ.get("ENGINE_WRITES_NOTHING"):
    (out / "model.pt").write_bytes(b"neff")
    (out / "neuron_config.json").write_text("{{}}")
"""


def _request(**changes: Any) -> CompileRequest:
    values: dict[str, Any] = {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "revision": REVISION,
        "tensor_parallel": 2,
        "max_model_len": 4096,
        "max_num_seqs": 8,
        "output": f"s3://{BUCKET}/llama-8b/inf2-tp2/",
    }
    return CompileRequest(**{**values, **changes})


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A /dev with one Neuron device and a DLAMI-like vLLM environment."""
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "neuron0").touch()
    bin_dir = tmp_path / "opt" / "aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(ENGINE)
    (bin_dir / "python").chmod(0o755)
    return tmp_path


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _compile(host: Path, s3: Any, request: CompileRequest | None = None) -> int:
    return compile_and_upload(
        request or _request(),
        work_dir=host / "work",
        s3_client=s3,
        vllm_environment=f"{host}/opt/aws_neuronx_venv_pytorch_inference_vllm_*",
        dev=host / "dev",
    )


def test_compiles_on_the_device_host_and_uploads_artefacts_and_manifest(
    host: Path, s3: Any
) -> None:
    assert _compile(host, s3) == 3
    engine = json.loads((host / "work" / "engine.json").read_text())
    assert engine == {
        "args": {
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "revision": REVISION,
            "tensor_parallel_size": 2,
            "max_model_len": 4096,
            "max_num_seqs": 8,
            "dtype": "bfloat16",
        },
        "cores": "0-1",
    }
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [
        f"llama-8b/inf2-tp2/{MANIFEST}",
        "llama-8b/inf2-tp2/model.pt",
        "llama-8b/inf2-tp2/neuron_config.json",
    ]
    body = s3.get_object(Bucket=BUCKET, Key=f"llama-8b/inf2-tp2/{MANIFEST}")["Body"].read()
    assert json.loads(body)["tensor_parallel"] == 2


def test_the_engine_is_the_newest_vllm_environment_with_the_artefacts_folder(host: Path) -> None:
    older = host / "opt" / "aws_neuronx_venv_pytorch_inference_vllm_0_9_0" / "bin"
    older.mkdir(parents=True)
    (older / "python").touch()
    vllm = find_vllm(f"{host}/opt/aws_neuronx_venv_pytorch_inference_vllm_*")
    assert vllm.name == "aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0"
    argv, env = compile_command(_request(tensor_parallel=1), vllm, host / "a")
    assert argv[0] == str(vllm / "bin" / "python")
    assert env == {"NEURON_COMPILED_ARTIFACTS": str(host / "a"), "NEURON_RT_VISIBLE_CORES": "0"}


def test_fails_on_a_host_without_a_neuron_device(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as caught:
        require_neuron_device(tmp_path)
    assert str(caught.value) == (
        f"no Neuron device ({tmp_path}/neuron*) on this host: the Neuron compiler and runtime "
        "compile for the device the model will run on. Fix: run `inf3kit llm compile` on an "
        "instance of the family you serve on (inf2, trn1, trn2), booted from the Neuron DLAMI"
    )


def test_fails_when_the_request_is_wrong_and_lists_every_problem(tmp_path: Path) -> None:
    request = _request(
        model=str(tmp_path), revision=None, tensor_parallel=0, dtype="int4", output="s3://x/p"
    )
    assert request.problems() == [
        f"--model {tmp_path}: no config.json in that folder. Fix: pass the folder holding the "
        "model's config.json and *.safetensors",
        "--tensor-parallel 0 must be >= 1. Fix: the value the service uses",
        "--dtype 'int4' is not allowed. Fix: bfloat16 or float16",
        "--output 's3://x/p' is not an S3 prefix. Fix: s3://BUCKET/PREFIX/ (ending in '/'), "
        "then give it as model.weights.compiled",
    ]
    assert _request(revision="main").problems() == [
        "--revision 'main': a Hugging Face model needs its commit (40 hex digits), so the "
        "artefacts match the weights the fleet loads. Fix: --revision COMMIT from the model "
        "page's history"
    ]


def test_fails_when_the_engine_fails_or_leaves_nothing(
    host: Path, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_FAILS", "1")
    with pytest.raises(CompileError, match="the compile exited 3"):
        _compile(host, s3)
    monkeypatch.delenv("ENGINE_FAILS")
    monkeypatch.setenv("ENGINE_WRITES_NOTHING", "1")
    with pytest.raises(CompileError, match="left nothing in"):
        _compile(host, s3)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_artefacts_for_other_settings_are_refused_before_serving(host: Path, s3: Any) -> None:
    _compile(host, s3)
    artefacts = host / "work" / "artefacts"
    assert manifest_problems(artefacts, engine_settings(2, 4096, 8, "bfloat16")) == []
    assert manifest_problems(artefacts, engine_settings(4, 4096, 8, "bfloat16")) == [
        "compiled for tensor_parallel 2, served with 4. Fix: compile again with `inf3kit llm "
        "compile` for these settings, or serve with the compiled ones"
    ]
    result = CliRunner().invoke(
        app,
        [
            "llm",
            "check-compiled",
            str(artefacts),
            "--tensor-parallel",
            "4",
            "--max-model-len",
            "4096",
            "--max-num-seqs",
            "8",
        ],
    )
    assert result.exit_code == 1
    assert "compiled for tensor_parallel 2, served with 4" in result.output


def test_command_refuses_to_compile_on_this_host_without_a_device(tmp_path: Path) -> None:
    """This machine has no /dev/neuron*: the command stops before anything else runs."""
    assert not list(Path("/dev").glob("neuron[0-9]*"))
    (tmp_path / "config.json").write_text("{}")
    result = CliRunner().invoke(
        app,
        [
            "llm",
            "compile",
            "--model",
            str(tmp_path),
            "--tensor-parallel",
            "2",
            "--max-model-len",
            "4096",
            "--max-num-seqs",
            "8",
            "--output",
            f"s3://{BUCKET}/p/",
            "--region",
            "us-east-1",
        ],
    )
    assert result.exit_code == 1
    assert "no Neuron device (/dev/neuron*) on this host" in " ".join(result.output.split())


def test_fails_with_the_kept_artefacts_when_the_upload_is_refused(host: Path, s3: Any) -> None:
    missing_bucket = _request(output="s3://no-such-bucket/llama-8b/")
    with pytest.raises(CompileError) as info:
        _compile(host, s3, missing_bucket)
    assert "failed (" in str(info.value)
    assert f"The compiled artefacts stay in {host / 'work' / 'artefacts'}" in str(info.value)


def test_fails_clearly_when_the_work_folder_cannot_be_made(host: Path, s3: Any) -> None:
    (host / "work").write_text("a file where the folder should be")
    with pytest.raises(CompileError, match=r"^cannot create .*artefacts .*--work-dir$"):
        _compile(host, s3)
