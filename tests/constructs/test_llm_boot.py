"""The LLM fleet's user data run as a script under bash, with stand-ins for what an instance has.

`python3 -m venv` and the venv's `pip`/`inf3kit`, `aws`, `cloud-init`, `logger`, `systemctl`
and `journalctl` are small scripts that record their calls; the vLLM environment holds a
stand-in `vllm` that serves `/health` on a real socket (or dies like a server out of device
memory), started by the stand-in systemctl from the unit and environment files the script
wrote. `curl` is the real one. Absolute paths of the script point into a temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3

from inf3kit.constructs import LlmFleet, RuntimeWheel
from inf3kit.llm import LlmSettings, LlmWeights

PY = sys.executable
REVISION = "0123456789abcdef0123456789abcdef01234567"

SYSTEMCTL = f"""#!{PY}
# systemctl stand-in: `start inf3kit-vllm@N.service` runs the unit's ExecStart with its
# environment, as systemd would; is-failed / show NRestarts report whether that process died.
import os, re, shlex, subprocess, sys
root = os.environ["ROOT"]
with open(os.environ["CALLS"], "a") as calls:
    calls.write("systemctl " + " ".join(sys.argv[1:]) + "\\n")
def dead(unit):
    pid_file = f"{{root}}/pids/{{unit}}"
    if not os.path.exists(pid_file):
        return False
    try:  # gone, or a zombie nobody reaped (the stand-in that started it has exited)
        stat = open(f"/proc/{{open(pid_file).read()}}/stat").read()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
args = sys.argv[1:]
if args[0] == "start":
    for unit in args[1:]:
        m = re.fullmatch(r"inf3kit-vllm@(\\d+)\\.service", unit)
        if not m:
            continue
        text = open(f"{{root}}/units/inf3kit-vllm@.service").read().replace("%i", m[1])
        env = dict(os.environ)
        for line in text.splitlines():
            if line.startswith("EnvironmentFile="):
                for kv in open(line.split("=", 1)[1]).read().splitlines():
                    k, _, v = kv.partition("=")
                    env[k] = v
            elif line.startswith("Environment="):
                k, _, v = line.split("=", 1)[1].partition("=")
                env[k] = v
        exec_start = next(l for l in text.splitlines() if l.startswith("ExecStart="))
        words = [re.sub(r"\\$\\{{(\\w+)\\}}", lambda v: env[v[1]], w)
                 for w in shlex.split(exec_start.split("=", 1)[1])]
        log = open(f"{{root}}/{{unit}}.log", "w")
        proc = subprocess.Popen(words, env=env, stdout=log, stderr=log, start_new_session=True)
        os.makedirs(f"{{root}}/pids", exist_ok=True)
        open(f"{{root}}/pids/{{unit}}", "w").write(str(proc.pid))
elif args[0] == "is-failed":
    sys.exit(0 if dead(args[-1]) else 1)
elif args[0] == "show":
    print(1 if dead(args[-1]) else 0)
"""

VLLM = f"""#!{PY}
# vllm stand-in: records how it was started, then serves /health, or dies as a server whose
# model does not fit its NeuronCores.
import http.server, json, os, sys
with open(os.environ["SERVERS"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "cores": os.environ["NEURON_RT_VISIBLE_CORES"],
        "work": os.environ["BASE_COMPILE_WORK_DIR"],
        "compiled": os.environ.get("NEURON_COMPILED_ARTIFACTS"),
        "token": "HF_TOKEN" in os.environ}}) + "\\n")
if os.environ["NEURON_RT_VISIBLE_CORES"] == os.environ.get("FAIL_CORES"):
    print("RuntimeError: failed to allocate 20.1 GiB on NeuronCore 1", file=sys.stderr)
    sys.exit(1)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
port = int(sys.argv[sys.argv.index("--port") + 1])
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""

STAND_INS = {
    "python3": """#!/bin/bash
# `python3 -m venv DIR`: a venv whose pip and inf3kit record their calls.
echo "python3 $*" >> "$CALLS"
mkdir -p "$3/bin"
for tool in pip inf3kit; do
  printf '#!/bin/bash\\necho "%s $*" >> "$CALLS"\\n' "$tool" > "$3/bin/$tool"
  printf '[ "$FAIL" != %s ] || { echo "$FAIL_MESSAGE" >&2; exit 1; }\\n' "$tool" >> "$3/bin/$tool"
  chmod +x "$3/bin/$tool"
done
""",
    "aws": """#!/bin/bash
echo "aws $*" >> "$CALLS"
if [ "$1 $2" = "s3 sync" ]; then mkdir -p "$4"; touch "$4/config.json"; fi
if [ "$1" = "secretsmanager" ]; then echo "hf_example_token"; fi
""",
    "cloud-init": "#!/bin/bash\necho i-0123456789abcdef0\n",
    "logger": '#!/bin/bash\necho "logger $*" >> "$CALLS"\n',
    "journalctl": '#!/bin/bash\ncat "$ROOT/$2.log"\n',
    "systemctl": SYSTEMCTL,
}


def _free_ports(count: int) -> int:
    """A first port with `count` free consecutive ports after it."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free consecutive ports")


@pytest.fixture(scope="module")
def port() -> int:
    return _free_ports(2)


@pytest.fixture(scope="module")
def user_data(port: int) -> str:
    """Two servers (inf2.xlarge: two NeuronCores at degree 1), Hugging Face weights with a
    token secret, and pre-compiled artefacts; CloudFormation references filled in."""
    stack = cdk.Stack(
        cdk.App(), "Boot", env=cdk.Environment(account="111122223333", region="eu-west-1")
    )
    LlmFleet(
        stack,
        "Fleet",
        vpc=ec2.Vpc(stack, "Vpc", max_azs=2),
        instance_types=["inf2.xlarge"],
        weights=LlmWeights(
            huggingface_id="TinyLlama/TinyLlama-1.1B-Chat-v1.0",
            revision=REVISION,
            token_secret="hf/token",
            compiled_prefix="s3://models-bucket/tinyllama/compiled/",
        ),
        settings=LlmSettings(tensor_parallel=1, max_model_len=2048, max_num_seqs=4),
        port=port,
        runtime_wheel=RuntimeWheel(
            s3.Bucket.from_bucket_name(stack, "Assets", "assets-bucket"),
            "0a1b2c3d.whl",
            "inf3kit-0.1.0-py3-none-any.whl",
        ),
    )
    template = cdk.assertions.Template.from_stack(stack).to_json()
    (lt,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    parts = lt["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "eu-west-1" for p in parts)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """The instance's folders, stand-ins on PATH; stops every server the test started."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STAND_INS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    for folder in ("units", "etc", "opt"):
        (tmp_path / folder).mkdir()
    yield tmp_path
    for pid_file in (tmp_path / "pids").glob("*") if (tmp_path / "pids").exists() else []:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)


def _vllm_environment(root: Path) -> None:
    """The DLAMI's vLLM virtual environment, with a `vllm` and a `python` stand-in."""
    env = root / "opt" / "aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0" / "bin"
    env.mkdir(parents=True)
    (env / "vllm").write_text(VLLM)
    (env / "python").write_text(
        '#!/bin/bash\necho "download $3 $4 $5 token=${HF_TOKEN:+yes}" >> "$CALLS"\n'
    )
    for tool in ("vllm", "python"):
        (env / tool).chmod(0o755)


def _run(
    user_data: str, root: Path, fail_cores: str = "", fail: str = "", fail_message: str = ""
) -> tuple[int, list[str], list[dict]]:
    script = (
        user_data.replace("/opt/inf3kit", f"{root}/opt/inf3kit")
        .replace("/opt/aws_neuronx_venv", f"{root}/opt/aws_neuronx_venv")
        .replace("/etc/inf3kit", f"{root}/etc")
        .replace("/etc/systemd/system", f"{root}/units")
        .replace("poll=5;", "poll=0.1;")
    )
    calls, servers = root / "calls.log", root / "servers.log"
    env = {
        "PATH": f"{root / 'bin'}:/usr/bin:/bin",
        "CALLS": str(calls),
        "SERVERS": str(servers),
        "ROOT": str(root),
        "FAIL_CORES": fail_cores,
        "FAIL": fail,
        "FAIL_MESSAGE": fail_message,
        "HOME": str(root),
    }
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    lines = calls.read_text().splitlines() if calls.exists() else []
    started = [json.loads(x) for x in servers.read_text().splitlines()] if servers.exists() else []
    return done.returncode, lines, started


def test_boot_starts_one_server_per_core_group_and_signals_success_once_all_are_healthy(
    user_data: str, root: Path, port: int
) -> None:
    _vllm_environment(root)
    code, calls, started = _run(user_data, root)
    assert code == 0, calls
    model = f"{root}/opt/inf3kit/llm/model"
    assert calls[1].startswith("aws s3 cp s3://assets-bucket/0a1b2c3d.whl")
    assert calls[3].startswith("logger -s -t inf3kit vLLM environment: ")
    assert calls[4] == (
        "aws secretsmanager get-secret-value --secret-id hf/token --query SecretString "
        "--output text --region eu-west-1"
    )
    # The token reaches the download only, never a server.
    assert calls[5] == f"download TinyLlama/TinyLlama-1.1B-Chat-v1.0 {REVISION} {model} token=yes"
    compiled = f"{root}/opt/inf3kit/llm/compiled"
    assert calls[6] == (
        f"aws s3 sync s3://models-bucket/tinyllama/compiled/ {compiled} "
        "--only-show-errors --region eu-west-1"
    )
    # Artefacts made for other settings are refused before any server starts.
    assert calls[7] == (
        f"inf3kit llm check-compiled {compiled} --tensor-parallel 1 --max-model-len 2048 "
        "--max-num-seqs 4 --dtype bfloat16"
    )
    assert sorted((s["cores"], s["argv"][s["argv"].index("--port") + 1]) for s in started) == [
        ("0", str(port)),
        ("1", str(port + 1)),
    ]
    for server in started:
        assert server["argv"][:2] == ["serve", model]
        assert server["argv"][server["argv"].index("--tensor-parallel-size") + 1] == "1"
        assert server["compiled"] == f"{root}/opt/inf3kit/llm/compiled"
        assert server["token"] is False
    assert len({s["work"] for s in started}) == 2  # each compiles in its own folder
    healthy = [c for c in calls if "healthy on port" in c]
    assert healthy == [
        f"logger -s -t inf3kit vLLM server 0 healthy on port {port} (NeuronCores 0)",
        f"logger -s -t inf3kit vLLM server 1 healthy on port {port + 1} (NeuronCores 1)",
    ]
    # The metrics publisher starts once the servers are up, and the signal is the last thing.
    assert calls[-2] == "systemctl start inf3kit-llm-metrics.service"
    assert calls[-1] == (
        "aws cloudformation signal-resource --status SUCCESS --region eu-west-1 --stack-name "
        f"Boot --logical-resource-id {calls[-1].split()[-3]} --unique-id i-0123456789abcdef0"
    )
    assert not [c for c in calls if "FAILURE" in c]
    units = (root / "units" / "inf3kit-llm-metrics.service").read_text()
    assert f"llm metrics --ports {port},{port + 1} --region eu-west-1" in units


def test_boot_signals_failure_with_the_reason_when_a_server_dies_before_it_is_healthy(
    user_data: str, root: Path, port: int
) -> None:
    _vllm_environment(root)
    code, calls, _ = _run(user_data, root, fail_cores="1")
    assert code == 1
    (reason,) = [c for c in calls if "stopped before it was healthy" in c]
    assert reason.startswith(
        f"logger -s -t inf3kit vLLM server 1 (port {port + 1}, NeuronCores 1) stopped before "
        "it was healthy: RuntimeError: failed to allocate 20.1 GiB on NeuronCore 1"
    )
    assert calls[-1].startswith("aws cloudformation signal-resource --status FAILURE")
    assert not [c for c in calls if "SUCCESS" in c or "llm-metrics.service" in c.split()[-1:]]


def test_boot_signals_failure_when_the_image_has_no_vllm_environment(
    user_data: str, root: Path
) -> None:
    code, calls, started = _run(user_data, root)
    assert code == 1
    assert calls[-2].startswith(
        "logger -s -t inf3kit no vLLM environment matches "
        f"{root}/opt/aws_neuronx_venv_pytorch_inference_vllm_*. Fix: boot the Neuron "
        "multi-framework DLAMI"
    )
    assert calls[-1].startswith("aws cloudformation signal-resource --status FAILURE")
    assert started == []


def test_boot_refuses_compiled_artefacts_made_for_other_settings_before_any_server_starts(
    user_data: str, root: Path
) -> None:
    _vllm_environment(root)
    mismatch = "compiled artefacts do not match: compiled for tensor_parallel 2, served with 1"
    code, calls, started = _run(user_data, root, fail="inf3kit", fail_message=mismatch)
    assert code == 1
    assert calls[-2] == (f"logger -s -t inf3kit s3://models-bucket/tinyllama/compiled/: {mismatch}")
    assert calls[-1].startswith("aws cloudformation signal-resource --status FAILURE")
    assert started == []
