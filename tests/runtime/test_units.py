"""Unit tests: manifest, settings, hardware selection, bundles, compile, datatypes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, TINY

from inf3kit.runtime import commands, hardware, server
from inf3kit.runtime.bundle import open_bundle, pack_bundle, verify_bundle
from inf3kit.runtime.commands import compile_bundle
from inf3kit.runtime.compile import CompileError, parse_tensor_arg
from inf3kit.runtime.datatypes import ValueProblem, bf16_bits, bf16_to_float32, from_json_data
from inf3kit.runtime.hardware import (
    CORES_PER_DEVICE,
    PHYSICAL_CORES_PER_DEVICE,
    HostHardware,
    logical_cores_per_device,
    select_variant,
)
from inf3kit.runtime.manifest import MANIFEST_NAME, Manifest, ManifestError, parse_manifest
from inf3kit.runtime.settings import load_settings

SHA = "0" * 64
CPU = HostHardware("cpu", detail="no /dev/neuron* devices")
INF3 = HostHardware("inf3", neuron_cores=4, neuron_sdk=True, detail="2 Neuron device(s)")


def manifest_dict(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "format_version": 1,
        "name": "m",
        "version": "1",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [2]}],
        "variants": [
            {"target": t, "file": f"{t}-{b}.pt", "batch_size": b, "sha256": SHA,
             "compiler": {"name": "torch.jit.trace", "version": "2.13.0"}}
            for t, b in (("cpu", 1), ("cpu", 8), ("inf3", 16))
        ],
    }  # fmt: skip
    base.update(changes)
    return base


def manifest(**changes: object) -> Manifest:
    return parse_manifest(json.dumps(manifest_dict(**changes)))


# --- manifest ---------------------------------------------------------------------------------


def test_fails_when_manifest_has_unknown_target_and_typo() -> None:
    data = manifest_dict()
    data["variants"][0]["target"] = "gpu"  # type: ignore[index]
    data["nmae"] = "typo"
    with pytest.raises(ManifestError) as err:
        parse_manifest(json.dumps(data), "m.json")
    assert str(err.value) == (
        "m.json: 2 problem(s) in the manifest\n"
        "  - variants.0.target: Input should be 'cpu', 'inf1', 'inf2', 'inf3', 'trn1', 'trn2' or "
        "'trn3'; compile a variant for one of these targets with `inf3kit compile --target` "
        "(got 'gpu')\n"
        "  - nmae: unknown field; remove it (check the spelling against docs/runtime.md) "
        "(got 'typo')"
    )


def test_fails_when_format_version_is_newer() -> None:
    with pytest.raises(ManifestError, match="understands format_version 1 and 2, got 3"):
        manifest(format_version=3)


def test_fails_when_a_named_dimension_is_in_a_format_1_manifest() -> None:
    spec = {"name": "x", "datatype": "FP32", "shape": [16], "dynamic": {"0": "seq"}}
    data = manifest_dict(inputs=[spec])
    with pytest.raises(ManifestError, match=r"named dimensions \['seq'\] need format_version 2"):
        parse_manifest(json.dumps(data))


def test_fails_when_shape_is_dynamic_or_path_escapes() -> None:
    data = manifest_dict(inputs=[{"name": "x", "datatype": "FP32", "shape": [-1]}])
    data["variants"][0]["file"] = "../etc/passwd"  # type: ignore[index]
    with pytest.raises(ManifestError) as err:
        parse_manifest(json.dumps(data))
    assert "inputs.0.shape: every dimension must be a positive integer" in str(err.value)
    assert "variants.0.file: must be a path relative to the bundle directory" in str(err.value)


def test_fails_when_manifest_is_not_json() -> None:
    with pytest.raises(ManifestError, match=r"^x.json: not valid JSON"):
        parse_manifest("{", "x.json")


# --- hardware selection -------------------------------------------------------------------------


def test_cpu_host_picks_largest_cpu_variant() -> None:
    assert select_variant(manifest(), CPU).file == "cpu-8.pt"
    assert select_variant(manifest(), CPU, max_batch_size=4).file == "cpu-1.pt"


def test_neuron_host_picks_its_own_family() -> None:
    assert select_variant(manifest(), INF3).file == "inf3-16.pt"


def test_fails_when_neuron_variant_is_forced_on_cpu() -> None:
    with pytest.raises(ManifestError) as err:
        select_variant(manifest(), CPU, target="inf3")
    assert str(err.value).startswith(
        "cannot serve a 'inf3' variant on this host (no /dev/neuron* devices; torch_neuronx "
        "importable: False)"
    )


def test_fails_when_neuron_host_has_no_matching_variant() -> None:
    trn2 = HostHardware("trn2", neuron_cores=8, neuron_sdk=True)
    with pytest.raises(ManifestError) as err:
        select_variant(manifest(), trn2)
    assert (
        "has no variant for trn2 (host: trn2); variants present: cpu/b1, cpu/b8, inf3/b16"
        in str(err.value)
    )


# --- settings -----------------------------------------------------------------------------------


def test_settings_from_env_and_overrides() -> None:
    s = load_settings({"INF3KIT_MAX_DELAY_MS": "5", "INF3KIT_ACCESS_LOG": "yes"}, workers=3)
    assert (s.max_delay_ms, s.access_log, s.workers, s.port) == (5.0, True, 3, 8080)


def test_sagemaker_port_wins_over_inf3kit_port() -> None:
    env = {"INF3KIT_PORT": "9000", "SAGEMAKER_BIND_TO_PORT": "8081"}
    assert load_settings(env).port == 8081
    assert load_settings(env, port=7000).port == 7000


def test_fails_when_settings_are_invalid() -> None:
    with pytest.raises(ValueError) as err:
        load_settings({"INF3KIT_WORKERS": "two", "INF3KIT_QUEUE_SIZE": "0"})
    assert str(err.value) == (
        "invalid runtime settings:\n"
        "  - INF3KIT_WORKERS='two': not a valid workers "
        "(invalid literal for int() with base 10: 'two')\n"
        "  - INF3KIT_QUEUE_SIZE=0: must be >= 1"
    )


def test_settings_problem_names_the_flag_it_came_from() -> None:
    env = {"INF3KIT_WORKERS": "0", "INF3KIT_QUEUE_SIZE": "5", "SAGEMAKER_BIND_TO_PORT": "70000"}
    with pytest.raises(ValueError) as err:
        load_settings(env, queue_size=0, grace_seconds=-1.0)
    assert str(err.value) == (
        "invalid runtime settings:\n"
        "  - --queue-size=0: must be >= 1\n"
        "  - INF3KIT_WORKERS=0: must be >= 1\n"
        "  - --grace-seconds=-1.0: must be >= 0\n"
        "  - SAGEMAKER_BIND_TO_PORT=70000: must be <= 65535"
    )
    with pytest.raises(ValueError, match=r"--port=70000: must be <= 65535"):
        load_settings({}, port=70000)


def test_flag_replaces_an_unparsable_environment_value() -> None:
    assert load_settings({"INF3KIT_WORKERS": "two"}, workers=2).workers == 2


def test_fails_when_a_float_setting_is_not_finite() -> None:
    env = {
        "INF3KIT_MAX_DELAY_MS": "inf",
        "INF3KIT_REQUEST_TIMEOUT_MS": "nan",
        "INF3KIT_GRACE_SECONDS": "-inf",
        "INF3KIT_SIMULATED_DEVICE_MS": "NaN",
    }
    with pytest.raises(ValueError) as err:
        load_settings(env)
    assert str(err.value) == (
        "invalid runtime settings:\n"
        "  - INF3KIT_MAX_DELAY_MS='inf': not a valid max delay ms (expected a finite number)\n"
        "  - INF3KIT_REQUEST_TIMEOUT_MS='nan': not a valid request timeout ms "
        "(expected a finite number)\n"
        "  - INF3KIT_GRACE_SECONDS='-inf': not a valid grace seconds (expected a finite number)\n"
        "  - INF3KIT_SIMULATED_DEVICE_MS='NaN': not a valid simulated device ms "
        "(expected a finite number)"
    )


def test_fails_when_a_float_flag_is_not_finite() -> None:
    with pytest.raises(ValueError) as err:
        load_settings({}, max_delay_ms=float("inf"), grace_seconds=float("nan"))
    assert str(err.value) == (
        "invalid runtime settings:\n"
        "  - --max-delay-ms=inf: must be a finite number\n"
        "  - --grace-seconds=nan: must be a finite number"
    )


def test_fails_when_a_float_setting_is_above_its_maximum() -> None:
    env = {
        "INF3KIT_MAX_DELAY_MS": "3600001",
        "INF3KIT_REQUEST_TIMEOUT_MS": "1e300",
        "INF3KIT_GRACE_SECONDS": "3601",
        "INF3KIT_SIMULATED_DEVICE_MS": "1e20",
    }
    with pytest.raises(ValueError) as err:
        load_settings(env)
    assert str(err.value) == (
        "invalid runtime settings:\n"
        "  - INF3KIT_MAX_DELAY_MS=3600001.0: must be <= 3600000\n"
        "  - INF3KIT_REQUEST_TIMEOUT_MS=1e+300: must be <= 3600000\n"
        "  - INF3KIT_GRACE_SECONDS=3601.0: must be <= 3600\n"
        "  - INF3KIT_SIMULATED_DEVICE_MS=1e+20: must be <= 3600000"
    )
    with pytest.raises(ValueError) as err:
        load_settings({}, grace_seconds=1e9)
    assert str(err.value) == (
        "invalid runtime settings:\n  - --grace-seconds=1000000000.0: must be <= 3600"
    )


def test_float_settings_accept_their_bounds() -> None:
    s = load_settings(
        {"INF3KIT_MAX_DELAY_MS": "3600000", "INF3KIT_REQUEST_TIMEOUT_MS": "3.6e6"},
        grace_seconds=3600.0,
    )
    assert (s.max_delay_ms, s.request_timeout_ms, s.grace_seconds) == (3.6e6, 3.6e6, 3600.0)


def test_fails_when_the_log_level_is_unknown() -> None:
    with pytest.raises(ValueError) as err:
        load_settings({"INF3KIT_LOG_LEVEL": "verbose"})
    assert str(err.value) == (
        "invalid runtime settings:\n"
        "  - INF3KIT_LOG_LEVEL='verbose': not a valid log level "
        "(expected one of critical, error, warning, info, debug, trace)"
    )
    with pytest.raises(ValueError) as err:
        load_settings({}, log_level="loud")
    assert str(err.value) == (
        "invalid runtime settings:\n"
        "  - --log-level='loud': must be one of critical, error, warning, info, debug, trace"
    )


@pytest.mark.parametrize(
    ("raw", "level", "number"),
    [
        ("WARNING", "warning", logging.WARNING),
        (" debug ", "debug", logging.DEBUG),
        ("trace", "trace", 5),
    ],
)
def test_log_level_reaches_logging_and_the_server(
    monkeypatch: pytest.MonkeyPatch, raw: str, level: str, number: int
) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.update(kw))
    monkeypatch.setattr(server, "run", lambda settings: seen.update(settings=settings) or 0)
    monkeypatch.setenv("INF3KIT_LOG_LEVEL", raw)
    monkeypatch.delenv("INF3KIT_NEURON_CORES", raising=False)
    assert commands.serve() == 0
    assert seen["level"] == number
    assert seen["settings"].log_level == level  # type: ignore[attr-defined]  # the server's name
    assert logging.getLevelName(number) == level.upper()


def test_module_entry_point_reports_a_bad_setting_without_traceback() -> None:
    env = {**os.environ, "INF3KIT_MAX_DELAY_MS": "inf", "INF3KIT_GRACE_SECONDS": "1e9"}
    result = subprocess.run(
        [sys.executable, "-m", "inf3kit.runtime", "serve"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "inf3kit: invalid runtime settings:\n"
        "  - INF3KIT_MAX_DELAY_MS='inf': not a valid max delay ms (expected a finite number)\n"
        "  - INF3KIT_GRACE_SECONDS=1000000000.0: must be <= 3600\n",
    )


def test_logical_neuron_cores_per_device() -> None:
    # Physical per chip (the catalog) vs logical as the Neuron runtime exposes them.
    assert PHYSICAL_CORES_PER_DEVICE["trn2"] == PHYSICAL_CORES_PER_DEVICE["trn3"] == 8
    assert CORES_PER_DEVICE == {"inf1": 4, "inf2": 2, "trn1": 2, "trn2": 4, "inf3": 2, "trn3": 4}
    assert logical_cores_per_device("trn2") == 4  # LNC=2 by default
    assert logical_cores_per_device("trn2", "1") == 8
    assert logical_cores_per_device("trn2", "bogus") == 4
    assert logical_cores_per_device("inf2", "1") == logical_cores_per_device("inf2", "2") == 2


def test_probe_counts_logical_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware.glob, "glob", lambda pattern: ["/dev/neuron0", "/dev/neuron1"])
    monkeypatch.delenv("NEURON_RT_VISIBLE_CORES", raising=False)
    monkeypatch.delenv("NEURON_LOGICAL_NC_CONFIG", raising=False)
    assert hardware.probe_hardware("trn2").neuron_cores == 8
    monkeypatch.setenv("NEURON_LOGICAL_NC_CONFIG", "1")
    assert hardware.probe_hardware("trn2").neuron_cores == 16
    assert hardware.probe_hardware("inf2").neuron_cores == 4


# --- bundles and compile ------------------------------------------------------------------------


def test_compile_adds_and_replaces_variants(tmp_path: Path) -> None:
    out = tmp_path / "b"
    compile_bundle(f"{TINY}:echo", ["INPUT__0:FP32:4"], out, batch_size=2, name="echo")
    compile_bundle(f"{TINY}:echo", ["INPUT__0:FP32:4"], out, batch_size=4)
    _, v = compile_bundle(f"{TINY}:echo", ["INPUT__0:FP32:4"], out, batch_size=2, version="2")
    saved = json.loads((out / MANIFEST_NAME).read_text())
    assert [(x["target"], x["batch_size"]) for x in saved["variants"]] == [("cpu", 2), ("cpu", 4)]
    assert saved["name"] == "echo" and saved["version"] == "2"
    assert saved["outputs"] == [{"name": "OUTPUT__0", "datatype": "FP32", "shape": [4]}]
    assert v.sha256 == hashlib.sha256((out / v.file).read_bytes()).hexdigest()
    verify_bundle(open_bundle(out))


def test_fails_when_compiling_for_neuron_without_sdk(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as err:
        compile_bundle(f"{TINY}:echo", ["INPUT__0:FP32:4"], tmp_path, target="inf3")
    assert str(err.value).startswith(
        "target 'inf3' needs torch_neuronx, which is not importable: install the Neuron SDK"
    )
    assert not (tmp_path / MANIFEST_NAME).exists()


@pytest.mark.parametrize(
    ("factory", "inputs", "message"),
    [
        (f"{TINY}:not_a_module", ["x:FP32:4"], "returned str, not a torch.nn.Module"),
        (f"{TINY}:missing", ["x:FP32:4"], "has no callable 'missing'"),
        ("no_such_module:build", ["x:FP32:4"], "cannot import 'no_such_module'"),
        (f"{TINY}:echo", ["x:FP33:4"], "datatype 'FP33' is not one of BOOL"),
        (f"{TINY}:echo", ["x:FP32:4x0"], "shape '4x0' must be positive integers"),
        (f"{TINY}:echo", ["x-FP32-4"], "expected NAME:DTYPE:SHAPE"),
    ],
)
def test_fails_when_compile_arguments_are_wrong(
    tmp_path: Path, factory: str, inputs: list[str], message: str
) -> None:
    with pytest.raises(CompileError, match=message.replace("(", r"\(")):
        compile_bundle(factory, inputs, tmp_path / "b")


def test_fails_when_bundle_gets_a_different_model(tmp_path: Path) -> None:
    compile_bundle(f"{TINY}:echo", ["INPUT__0:FP32:4"], tmp_path, batch_size=2)
    with pytest.raises(ManifestError, match="a bundle holds variants of one model"):
        compile_bundle(f"{TINY}:echo", ["INPUT__0:FP32:5"], tmp_path, batch_size=2)


def test_pack_is_reproducible_and_round_trips(echo_bundle: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "1.tar.gz", tmp_path / "2.tar.gz"
    pack_bundle(echo_bundle, first)
    pack_bundle(echo_bundle, second)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [MANIFEST_NAME, "model-cpu-b16.pt"]
    assert {(m.mtime, m.uid, m.gid) for m in members} == {(0, 0, 0)}
    bundle = open_bundle(first, tmp_path / "unpacked")
    verify_bundle(bundle)
    assert bundle.manifest.name == "echo"


def test_parse_tensor_arg_accepts_both_shape_spellings() -> None:
    assert parse_tensor_arg("img:fp16:3x224x224").shape == (3, 224, 224)
    assert parse_tensor_arg("img:FP16:3,224,224").datatype == "FP16"


def test_bf16_round_trip() -> None:
    values = np.array([1.0, -2.5, 3.140625, 0.0], dtype=np.float32)
    np.testing.assert_array_equal(bf16_to_float32(bf16_bits(values)), values)


@pytest.mark.parametrize(
    ("data", "datatype", "message"),
    [
        ([1.0, 70000.0], "FP16", "value 70000.0 at position 1 is outside the FP16 range"),
        ([3.4e38], "BF16", "value 3.4e+38 at position 0 is outside the BF16 range"),
        ([0, 2**64], "UINT64", "value 18446744073709551616 at position 1 is outside the UINT64"),
        ([-1, 2**63], "UINT64", "value -1 at position 0 is outside the UINT64 range"),
        ([2**63], "INT64", "value 9223372036854775808 at position 0 is outside the INT64 range"),
        ([9.3e18], "INT64", "value 9.3e+18 at position 0 is outside the INT64 range"),
        ([True, 1], "BOOL", "value 1 at position 1 is not a boolean"),
        (
            [[1.0, "x" * 60]],
            "FP32",
            "value 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... at position [0, 1]",
        ),
    ],
)
def test_fails_when_a_json_value_does_not_fit_its_datatype(
    data: list[object], datatype: str, message: str
) -> None:
    with pytest.raises(ValueProblem) as err:
        from_json_data(data, datatype)
    assert str(err.value).startswith(message)


def test_json_values_at_the_edges_of_their_datatype_convert_exactly() -> None:
    assert from_json_data([2**64 - 1, 0], "UINT64").tolist() == [2**64 - 1, 0]
    assert from_json_data([[2**63 + 1], [1]], "UINT64").tolist() == [[2**63 + 1], [1]]
    assert from_json_data([-(2**63), 2**63 - 1], "INT64").tolist() == [-(2**63), 2**63 - 1]
    assert from_json_data([2.0, 3], "INT32").tolist() == [2, 3]
    assert from_json_data([True, False], "BOOL").tolist() == [True, False]
    assert from_json_data([[65504.0]], "FP16").tolist() == [[65504.0]]
