"""`inf3kit bootstrap` against moto S3 with real bundles; systemd and the signal go to files."""

from __future__ import annotations

import hashlib
import json
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from inf3kit.runtime.bootstrap import (
    BootstrapConfig,
    BootstrapError,
    bootstrap,
    parse_env,
    render_metrics_unit,
    wait_ready,
)
from inf3kit.runtime.bundle import pack_bundle
from inf3kit.runtime.hardware import HostHardware

BUCKET = "fleet-models"
CPU = HostHardware("cpu", 0, False, "test host")
INF2 = HostHardware("inf2", 2, True, "test inf2 host")
GROUP = "ranker-FleetASG-1A2B3C"


def _bundle_dir(root: Path, targets: tuple[str, ...] = ("cpu",)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    variants = []
    for target in targets:
        payload = f"compiled model for {target}".encode()
        (root / f"model-{target}.pt").write_bytes(payload)
        variants.append(
            {
                "target": target,
                "file": f"model-{target}.pt",
                "batch_size": 4,
                "neuron_cores_per_replica": 1,
                "compiler": {"name": "test", "version": "1"},
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        )
    manifest = {
        "format_version": 1,
        "name": "ranker",
        "version": "7",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [3]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [1]}],
        "variants": variants,
    }
    (root / "inf3kit-manifest.json").write_text(json.dumps(manifest))
    return root


class Recorder:
    """Stands in for systemctl and cfn-signal: every call is appended to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def __call__(self, *args: object) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps([list(a) if isinstance(a, list) else a for a in args]) + "\n")

    def calls(self) -> list[list[object]]:
        return [json.loads(line) for line in self.path.read_text().splitlines()]


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def ready_server() -> Iterator[int]:
    """A real socket answering the runtime's readiness path with 200."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/v2/health/ready" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()


def _config(tmp_path: Path, key: str, port: int = 8080, **kw: object) -> BootstrapConfig:
    return BootstrapConfig(
        bundle=f"s3://{BUCKET}/{key}",
        port=port,
        model_dir=tmp_path / "opt" / "model",
        env_file=tmp_path / "etc" / "serve.env",
        unit_dir=tmp_path / "systemd",
        executable="/opt/inf3kit/venv/bin/inf3kit",
        stack="ranker",
        resource="FleetASG",
        ready_timeout=5,
        **kw,  # type: ignore[arg-type]
    )


def _upload(s3: object, tmp_path: Path, key: str, targets: tuple[str, ...] = ("cpu",)) -> None:
    archive = tmp_path / "packed" / "model.tar.gz"
    pack_bundle(_bundle_dir(tmp_path / "bundle", targets), archive)
    s3.upload_file(str(archive), BUCKET, key)  # type: ignore[attr-defined]


def _ok(port: int, timeout: float) -> str:
    return "/v2/health/ready"


def _run(tmp_path: Path, config: BootstrapConfig, s3: object, **kw: object) -> tuple:
    systemd, signals = Recorder(tmp_path / "systemctl.log"), Recorder(tmp_path / "signals.log")
    kw.setdefault("hardware", CPU)
    kw.setdefault("lifecycle_state", lambda: "InService")
    result = bootstrap(config, s3_client=s3, run=systemd, signal=signals, **kw)  # type: ignore[arg-type]
    return result, systemd, signals


def test_bootstrap_installs_verifies_starts_and_signals_success(
    s3: object, tmp_path: Path, ready_server: int
) -> None:
    _upload(s3, tmp_path, "ranker/model.tar.gz")
    config = _config(
        tmp_path, "ranker/model.tar.gz", port=ready_server, env={"INF3KIT_MAX_BATCH_SIZE": "4"}
    )
    result, systemd, signals = _run(tmp_path, config, s3)

    assert result.started and result.signalled == "SUCCESS" and result.variant == "cpu/b4"
    assert (config.model_dir / "inf3kit-manifest.json").is_file()
    assert (config.model_dir / "model-cpu.pt").read_bytes() == b"compiled model for cpu"
    assert systemd.calls() == [
        [["daemon-reload"]],
        [["enable", "inf3kit.service"]],
        [["start", "inf3kit.service"]],
    ]
    assert signals.calls() == [["SUCCESS", "ready on /v2/health/ready with cpu/b4"]]
    env = config.env_file.read_text()
    assert f'INF3KIT_MODEL_DIR="{config.model_dir}"' in env
    assert f'INF3KIT_PORT="{ready_server}"' in env
    assert 'INF3KIT_MAX_BATCH_SIZE="4"' in env
    assert "NEURON_RT_VISIBLE_CORES" not in env
    unit = config.unit_path.read_text()
    assert "ExecStart=/opt/inf3kit/venv/bin/inf3kit serve\n" in unit
    assert f"EnvironmentFile={config.env_file}\n" in unit
    assert "Description=inf3kit model server (ranker 7, cpu/b4)" in unit
    assert "TimeoutStopSec=40" in unit and "WantedBy=multi-user.target" in unit
    assert result.metrics_group is None and not config.metrics_unit_path.exists()  # CPU host


def test_bootstrap_pins_the_server_to_the_neuroncores(
    s3: object, tmp_path: Path, ready_server: int
) -> None:
    _upload(s3, tmp_path, "m.tar.gz", targets=("cpu", "inf2"))
    config = _config(tmp_path, "m.tar.gz", port=ready_server)
    result, _, _ = _run(tmp_path, config, s3, hardware=INF2, group_name=lambda: GROUP)
    env = config.env_file.read_text()
    assert result.variant == "inf2/b4" and result.neuron_cores == 2
    assert 'NEURON_RT_VISIBLE_CORES="0-1"' in env and 'INF3KIT_NEURON_CORES="2"' in env


def test_neuron_host_publishes_neuroncore_utilisation_once_serving(
    s3: object, tmp_path: Path
) -> None:
    _upload(s3, tmp_path, "m.tar.gz", targets=("inf2",))
    config = _config(tmp_path, "m.tar.gz", region="us-east-1")
    result, systemd, _ = _run(
        tmp_path, config, s3, hardware=INF2, group_name=lambda: GROUP, ready=_ok
    )
    assert result.metrics_group == GROUP and result.signalled == "SUCCESS"
    assert systemd.calls() == [
        [["daemon-reload"]],
        [["enable", "inf3kit.service"]],
        [["enable", "inf3kit-neuron-metrics.service"]],
        [["start", "inf3kit.service"]],
        [["start", "inf3kit-neuron-metrics.service"]],
    ]
    unit = config.metrics_unit_path.read_text()
    assert config.metrics_unit_path.name == "inf3kit-neuron-metrics.service"
    assert (
        f'ExecStart=/opt/inf3kit/venv/bin/inf3kit neuron-metrics "--asg" "{GROUP}" '
        '"--region" "us-east-1"\n'
    ) in unit
    assert "Environment=PATH=/opt/aws/neuron/bin:" in unit
    assert "After=network-online.target inf3kit.service\n" in unit
    assert "Restart=always\n" in unit and "WantedBy=multi-user.target" in unit


def test_the_asg_flag_wins_over_the_instance_tag(s3: object, tmp_path: Path) -> None:
    _upload(s3, tmp_path, "m.tar.gz", targets=("inf2",))
    config = _config(tmp_path, "m.tar.gz", asg_name="given-group")
    result, _, _ = _run(tmp_path, config, s3, hardware=INF2, group_name=lambda: GROUP, ready=_ok)
    assert result.metrics_group == "given-group"
    assert '"--asg" "given-group"' in config.metrics_unit_path.read_text()


def test_neuron_host_outside_a_group_serves_without_the_metric(
    s3: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _upload(s3, tmp_path, "m.tar.gz", targets=("inf2",))
    config = _config(tmp_path, "m.tar.gz")
    result, systemd, _ = _run(
        tmp_path, config, s3, hardware=INF2, group_name=lambda: None, ready=_ok
    )
    assert result.started and result.metrics_group is None
    assert not config.metrics_unit_path.exists()
    assert ["enable", "inf3kit-neuron-metrics.service"] not in [c[0] for c in systemd.calls()]
    assert "NeuronCore utilisation is not published" in caplog.text


def test_cpu_host_never_looks_up_the_group(s3: object, tmp_path: Path) -> None:
    def no_lookup() -> str:
        raise AssertionError("a CPU host has no NeuronCores to report")

    _upload(s3, tmp_path, "m.tar.gz")
    config = _config(tmp_path, "m.tar.gz")
    result, _, _ = _run(tmp_path, config, s3, group_name=no_lookup, ready=_ok)
    assert result.metrics_group is None and not config.metrics_unit_path.exists()


def test_metrics_unit_quotes_what_systemd_would_expand(tmp_path: Path) -> None:
    config = BootstrapConfig(bundle="", executable="/venv/bin/inf3kit")
    unit = render_metrics_unit(config, 'my group $HOME 100% "x"')
    assert (
        'ExecStart=/venv/bin/inf3kit neuron-metrics "--asg" "my group $$HOME 100%% \\"x\\""\n'
    ) in unit


def test_fails_when_the_bundle_is_corrupted(s3: object, tmp_path: Path) -> None:
    source = _bundle_dir(tmp_path / "bundle")
    (source / "model-cpu.pt").write_bytes(b"tampered after compile")
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("inf3kit-manifest.json", "model-cpu.pt"):
            tar.add(source / name, arcname=name)
    s3.upload_file(str(archive), BUCKET, "bad.tar.gz")  # type: ignore[attr-defined]
    config = _config(tmp_path, "bad.tar.gz")
    expected = hashlib.sha256(b"compiled model for cpu").hexdigest()
    actual = hashlib.sha256(b"tampered after compile").hexdigest()

    systemd, signals = Recorder(tmp_path / "systemctl.log"), Recorder(tmp_path / "signals.log")
    with pytest.raises(BootstrapError) as info:
        bootstrap(
            config,
            s3_client=s3,
            run=systemd,
            signal=signals,
            hardware=CPU,
            lifecycle_state=lambda: None,
        )
    message = str(info.value)
    assert message.startswith(
        f"bundle s3://{BUCKET}/bad.tar.gz is not usable, so the server was not started: "
    )
    assert (
        f"variants[0] (cpu, batch 4): sha256 mismatch for 'model-cpu.pt': manifest says "
        f"{expected}, file has {actual}; the file is corrupt or was changed after compile, "
        "re-create the bundle"
    ) in message
    assert systemd.calls() == []  # no unit enabled, nothing started
    assert not config.unit_path.exists() and not config.env_file.exists()
    assert not config.model_dir.exists()
    assert [c[0] for c in signals.calls()] == ["FAILURE"]
    assert "sha256 mismatch" in str(signals.calls()[0][1])


def test_fails_when_the_bundle_object_is_missing(s3: object, tmp_path: Path) -> None:
    systemd, signals = Recorder(tmp_path / "systemctl.log"), Recorder(tmp_path / "signals.log")
    with pytest.raises(
        BootstrapError,
        match=r"^cannot download the bundle s3://fleet-models/nope"
        r"\.tar\.gz: .*Fix: check the object exists and the instance role may "
        r"s3:GetObject it$",
    ):
        bootstrap(
            _config(tmp_path, "nope.tar.gz"),
            s3_client=s3,
            run=systemd,
            signal=signals,
            hardware=CPU,
            lifecycle_state=lambda: None,
        )
    assert systemd.calls() == [] and [c[0] for c in signals.calls()] == ["FAILURE"]


def test_fails_when_no_variant_fits_the_host(s3: object, tmp_path: Path) -> None:
    _upload(s3, tmp_path, "cpu-only.tar.gz")
    systemd, signals = Recorder(tmp_path / "systemctl.log"), Recorder(tmp_path / "signals.log")
    with pytest.raises(BootstrapError, match="has no variant for inf2"):
        bootstrap(
            _config(tmp_path, "cpu-only.tar.gz"),
            s3_client=s3,
            run=systemd,
            signal=signals,
            hardware=INF2,
            lifecycle_state=lambda: None,
        )
    assert systemd.calls() == []


def test_warm_pool_instance_prepares_without_starting_or_signalling(
    s3: object, tmp_path: Path
) -> None:
    _upload(s3, tmp_path, "m.tar.gz")
    config = _config(tmp_path, "m.tar.gz")
    result, systemd, signals = _run(tmp_path, config, s3, lifecycle_state=lambda: "Warmed:Stopped")
    assert not result.started and result.signalled is None
    assert systemd.calls() == [[["daemon-reload"]], [["enable", "inf3kit.service"]]]
    assert signals.calls() == []
    assert (config.model_dir / "model-cpu.pt").is_file()


def test_warm_pool_neuron_instance_enables_the_metric_for_its_boot(
    s3: object, tmp_path: Path
) -> None:
    _upload(s3, tmp_path, "m.tar.gz", targets=("inf2",))
    config = _config(tmp_path, "m.tar.gz")
    result, systemd, _ = _run(
        tmp_path,
        config,
        s3,
        hardware=INF2,
        group_name=lambda: GROUP,
        lifecycle_state=lambda: "Warmed:Stopped",
    )
    assert not result.started and result.metrics_group == GROUP
    assert systemd.calls() == [
        [["daemon-reload"]],
        [["enable", "inf3kit.service"]],
        [["enable", "inf3kit-neuron-metrics.service"]],
    ]


def test_fails_when_the_server_never_gets_ready(s3: object, tmp_path: Path) -> None:
    _upload(s3, tmp_path, "m.tar.gz")
    config = _config(tmp_path, "m.tar.gz")

    def never_ready(port: int, timeout: float) -> str:
        return wait_ready(port, 0.2, poll=0.05)

    systemd, signals = Recorder(tmp_path / "systemctl.log"), Recorder(tmp_path / "signals.log")
    with pytest.raises(
        BootstrapError, match=r"^the server on port 8080 was not ready after 0\.2 s"
    ):
        bootstrap(
            config,
            s3_client=s3,
            run=systemd,
            signal=signals,
            hardware=CPU,
            lifecycle_state=lambda: None,
            ready=never_ready,
        )
    assert [c[0] for c in signals.calls()] == ["FAILURE"]


def test_fails_when_the_bundle_uri_is_not_s3(tmp_path: Path) -> None:
    signals = Recorder(tmp_path / "signals.log")
    config = BootstrapConfig(bundle="https://example.com/m.tar.gz", model_dir=tmp_path / "m")
    with pytest.raises(BootstrapError) as info:
        bootstrap(
            config,
            run=Recorder(tmp_path / "s.log"),
            signal=signals,
            hardware=CPU,
            lifecycle_state=lambda: None,
        )
    assert str(info.value) == (
        "bundle 'https://example.com/m.tar.gz' is not an s3:// URI. Fix: pass --bundle "
        "s3://BUCKET/KEY.tar.gz (or set INF3KIT_BUNDLE_URI)"
    )


def test_fails_when_an_env_pair_has_no_equals() -> None:
    with pytest.raises(BootstrapError) as info:
        parse_env(["INF3KIT_PORT"])
    assert (
        str(info.value)
        == "--env 'INF3KIT_PORT' is not NAME=value. Fix: e.g. --env INF3KIT_PORT=8080"
    )


def test_warm_pool_instance_completes_the_launch_hook_once_prepared(
    s3: object, tmp_path: Path
) -> None:
    """EC2 Auto Scaling stops a warm-pool instance only after its launch hook completes."""
    _upload(s3, tmp_path, "m.tar.gz")
    config = _config(tmp_path, "m.tar.gz")
    complete = Recorder(tmp_path / "hook.log")
    _run(tmp_path, config, s3, lifecycle_state=lambda: "Warmed:Stopped", complete=complete)
    assert complete.calls() == [["CONTINUE"]]


def test_warm_pool_restart_into_service_reuses_the_bundle_and_serves(
    s3: object, tmp_path: Path, ready_server: int
) -> None:
    """The per-boot bootstrap on the second boot must not need the download again."""
    _upload(s3, tmp_path, "m.tar.gz")
    config = _config(tmp_path, "m.tar.gz", port=ready_server)
    _run(
        tmp_path,
        config,
        s3,
        lifecycle_state=lambda: "Warmed:Stopped",
        complete=Recorder(tmp_path / "first.log"),
    )
    s3.delete_object(Bucket=BUCKET, Key="m.tar.gz")  # type: ignore[attr-defined]
    complete = Recorder(tmp_path / "hook.log")
    result, systemd, signals = _run(
        tmp_path, config, s3, lifecycle_state=lambda: "InService", complete=complete
    )
    assert result.started and result.variant == "cpu/b4"
    assert [["start", "inf3kit.service"]] in systemd.calls()
    assert complete.calls() == [["CONTINUE"]]
    assert signals.calls() == [["SUCCESS", "ready on /v2/health/ready with cpu/b4"]]


def test_a_new_bundle_uri_is_downloaded_even_with_one_installed(
    s3: object, tmp_path: Path, ready_server: int
) -> None:
    _upload(s3, tmp_path, "v1.tar.gz")
    _run(tmp_path, _config(tmp_path, "v1.tar.gz", port=ready_server), s3)
    config = _config(tmp_path, "v2.tar.gz", port=ready_server)
    with pytest.raises(BootstrapError, match="cannot download the bundle s3://fleet-models/v2"):
        _run(tmp_path, config, s3)


def test_fails_abandon_the_launch_and_signal_failure(s3: object, tmp_path: Path) -> None:
    config = _config(tmp_path, "missing.tar.gz")
    complete, signals = Recorder(tmp_path / "hook.log"), Recorder(tmp_path / "signals.log")
    with pytest.raises(BootstrapError):
        bootstrap(
            config,
            s3_client=s3,
            run=Recorder(tmp_path / "systemctl.log"),
            signal=signals,
            lifecycle_state=lambda: "Warmed:Stopped",
            hardware=CPU,
            complete=complete,
        )
    assert complete.calls() == [["ABANDON"]]
    assert [c[0] for c in signals.calls()] == ["FAILURE"]
