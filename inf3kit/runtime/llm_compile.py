"""``inf3kit llm compile``: pre-compile an LLM for vLLM on Neuron and store the artefacts in S3.

vLLM on Neuron compiles the model for its tensor-parallel degree and shapes when the engine
starts, which takes from minutes to most of an hour for a large model. The Neuron docs give the
way to do it once: point `NEURON_COMPILED_ARTIFACTS` at a folder and start the engine; it
compiles and saves the compiled model there, and a later engine started with the variable
pointing at those artefacts loads them instead of compiling (vLLM user guide for NxD
Inference, "Loading pre-compiled models / Serialization Support"; vLLM Neuron configuration
reference, "Compilation and caching"). This command does that with vLLM's offline `LLM` entry
point on a Neuron host, writes a manifest of what was compiled, and uploads the folder to an S3
prefix that fleets and endpoints take as `model.weights.compiled`.

Everything up to the engine is plain code under test here; the compile itself needs a Neuron
device (`/dev/neuron*`), which is checked first with a clear error.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

MANIFEST = "inf3kit-compiled.json"
"""Written next to the artefacts: the degree and shapes they were compiled for."""
VLLM_ENVIRONMENT = "/opt/aws_neuronx_venv_pytorch_inference_vllm_*"
"""The Neuron DLAMI's vLLM virtual environment (as LlmFleet's default)."""
_S3_PREFIX = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>(.+/)?)$")
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_REVISION = re.compile(r"^[0-9a-f]{40}$")
COMPILE_SCRIPT = (
    "import json, sys; from vllm import LLM; "
    "LLM(**json.loads(sys.argv[1])); "
    "print('inf3kit: engine built, artefacts saved')"
)
"""Building the offline engine compiles the model and saves it to NEURON_COMPILED_ARTIFACTS."""

Runner = Callable[..., subprocess.CompletedProcess[str]]


class CompileError(RuntimeError):
    """The compile cannot start or failed; the message names the cause and the fix."""


@dataclass(frozen=True)
class CompileRequest:
    """What to compile: the model, the degree and shapes, and where the artefacts go."""

    model: str
    """A local model folder (config.json and safetensors) or a Hugging Face model id."""
    tensor_parallel: int
    max_model_len: int
    max_num_seqs: int
    output: str
    """`s3://bucket/prefix/`: where the artefacts are uploaded."""
    dtype: str = "bfloat16"
    revision: str | None = None
    """The commit a Hugging Face id is pinned to."""

    def problems(self) -> list[str]:
        """Every problem with the request, before anything runs."""
        found = []
        local = Path(self.model)
        if local.is_dir():
            if not (local / "config.json").is_file():
                found.append(
                    f"--model {self.model}: no config.json in that folder. Fix: pass the folder "
                    "holding the model's config.json and *.safetensors"
                )
        elif _HF_ID.match(self.model):
            if self.revision is None or not _REVISION.match(self.revision):
                found.append(
                    f"--revision {self.revision!r}: a Hugging Face model needs its commit (40 "
                    "hex digits), so the artefacts match the weights the fleet loads. Fix: "
                    "--revision COMMIT from the model page's history"
                )
        else:
            found.append(
                f"--model {self.model!r} is neither a folder nor a Hugging Face id. Fix: a "
                "local model folder, or ORG/NAME with --revision"
            )
        for name, value in (
            ("--tensor-parallel", self.tensor_parallel),
            ("--max-model-len", self.max_model_len),
            ("--max-num-seqs", self.max_num_seqs),
        ):
            if value < 1:
                found.append(f"{name} {value} must be >= 1. Fix: the value the service uses")
        if self.dtype not in ("bfloat16", "float16"):
            found.append(f"--dtype {self.dtype!r} is not allowed. Fix: bfloat16 or float16")
        if not _S3_PREFIX.match(self.output):
            found.append(
                f"--output {self.output!r} is not an S3 prefix. Fix: s3://BUCKET/PREFIX/ "
                "(ending in '/'), then give it as model.weights.compiled"
            )
        return found

    def engine_arguments(self) -> dict[str, Any]:
        """vLLM `LLM(...)` keyword arguments: the same degree and shapes the servers use."""
        args: dict[str, Any] = {
            "model": self.model,
            "tensor_parallel_size": self.tensor_parallel,
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "dtype": self.dtype,
        }
        if self.revision is not None:
            args["revision"] = self.revision
        return args


def neuron_devices(dev: Path = Path("/dev")) -> list[Path]:
    return sorted(dev.glob("neuron[0-9]*"))


def require_neuron_device(dev: Path = Path("/dev")) -> None:
    if not neuron_devices(dev):
        raise CompileError(
            f"no Neuron device ({dev}/neuron*) on this host: the Neuron compiler and runtime "
            "compile for the device the model will run on. Fix: run `inf3kit llm compile` on "
            "an instance of the family you serve on (inf2, trn1, trn2), booted from the Neuron "
            "DLAMI"
        )


def find_vllm(pattern: str = VLLM_ENVIRONMENT) -> Path:
    """The newest vLLM environment matching `pattern` (a path or a glob)."""
    root = Path(pattern)
    matches = sorted(Path(root.anchor).glob(str(root.relative_to(root.anchor))), key=_version_key)
    found = [m for m in matches if (m / "bin" / "python").exists()]
    if not found:
        raise CompileError(
            f"no vLLM environment matches {pattern}. Fix: use the Neuron multi-framework DLAMI, "
            "or pass --vllm-environment PATH"
        )
    return found[-1]


def _version_key(path: Path) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name)]


def compile_command(
    request: CompileRequest, vllm: Path, artefacts: Path
) -> tuple[list[str], dict[str, str]]:
    """The command that builds the engine once, and its environment."""
    env = {
        "NEURON_COMPILED_ARTIFACTS": str(artefacts),
        "NEURON_RT_VISIBLE_CORES": "0"
        if request.tensor_parallel == 1
        else f"0-{request.tensor_parallel - 1}",
    }
    argv = [
        str(vllm / "bin" / "python"),
        "-c",
        COMPILE_SCRIPT,
        json.dumps(request.engine_arguments()),
    ]
    return argv, env


def write_manifest(request: CompileRequest, artefacts: Path) -> Path:
    data = {key: value for key, value in asdict(request).items() if key != "output"}
    path = artefacts / MANIFEST
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def upload(artefacts: Path, output: str, client: Any) -> int:
    """Upload every file under `artefacts` below the S3 prefix `output`; return the count."""
    match = _S3_PREFIX.match(output)
    if match is None:
        raise CompileError(f"--output {output!r} is not an S3 prefix. Fix: s3://BUCKET/PREFIX/")
    files = sorted(p for p in artefacts.rglob("*") if p.is_file())
    for path in files:
        key = match["key"] + path.relative_to(artefacts).as_posix()
        try:
            client.upload_file(str(path), match["bucket"], key)
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise CompileError(
                f"uploading {path} to s3://{match['bucket']}/{key} failed ({exc}). The compiled "
                f"artefacts stay in {artefacts}. Fix: give this host s3:PutObject on the prefix "
                "(and AWS credentials), then upload that folder with `aws s3 sync`"
            ) from None
    return len(files)


def manifest_problems(artefacts: Path, expected: dict[str, Any]) -> list[str]:
    """How compiled artefacts differ from what a server is about to use (empty when they
    match): a degree or shape the engine was not compiled for would load without a
    recompile (NxD Inference ignores differing settings) and misbehave."""
    try:
        found = json.loads((artefacts / MANIFEST).read_text())
    except (OSError, ValueError):
        return [
            f"{artefacts} has no readable {MANIFEST}. Fix: produce the artefacts with "
            "`inf3kit llm compile`"
        ]
    return [
        f"compiled for {key} {found.get(key)!r}, served with {value!r}. Fix: compile again with "
        f"`inf3kit llm compile` for these settings, or serve with the compiled ones"
        for key, value in expected.items()
        if found.get(key) != value
    ]


def compile_and_upload(
    request: CompileRequest,
    *,
    work_dir: Path,
    s3_client: Any,
    vllm_environment: str = VLLM_ENVIRONMENT,
    dev: Path = Path("/dev"),
    run: Runner = subprocess.run,
) -> int:
    """Check, compile on this host, write the manifest, upload; return the files uploaded."""
    problems = request.problems()
    if problems:
        raise CompileError("\n".join(problems))
    require_neuron_device(dev)
    vllm = find_vllm(vllm_environment)
    artefacts = work_dir / "artefacts"
    try:
        artefacts.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompileError(
            f"cannot create {artefacts} ({exc.strerror}). Fix: run as root, or pass a writable "
            "--work-dir"
        ) from None
    argv, env = compile_command(request, vllm, artefacts)
    done = run(argv, env={**os.environ, **env}, text=True)
    if done.returncode != 0:
        raise CompileError(
            f"the compile exited {done.returncode} (its output is above). Fix: check the model "
            "fits the NeuronCores at this degree (`inf3kit validate` runs the fit check) and "
            "the Neuron SDK of the vLLM environment supports the model"
        )
    if not any(p.is_file() for p in artefacts.rglob("*")):
        raise CompileError(
            f"the engine started but left nothing in {artefacts}. Fix: check that this vLLM "
            "build honours NEURON_COMPILED_ARTIFACTS (vLLM on Neuron with NxD Inference or the "
            "vllm-neuron plugin)"
        )
    write_manifest(request, artefacts)
    return upload(artefacts, request.output, s3_client)


def engine_settings(
    tensor_parallel: int, max_model_len: int, max_num_seqs: int, dtype: str
) -> dict[str, Any]:
    """The manifest keys a server checks before it loads artefacts."""
    return {
        "tensor_parallel": tensor_parallel,
        "max_model_len": max_model_len,
        "max_num_seqs": max_num_seqs,
        "dtype": dtype,
    }
