"""Profiles: the knee, storage beside the bundle, real measurements (fractions of a second)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inf3kit.plan.measure import default_concurrencies, profile_http, profile_in_process
from inf3kit.plan.profile import (
    ProfileError,
    profile_path,
    read_profile,
    stored_profiles,
    write_profile,
)
from inf3kit.runtime.manifest import ManifestError
from tests.plan.conftest import make_profile, point
from tests.runtime.conftest import running_server


def test_knee_is_the_first_concurrency_within_90_percent_of_the_best() -> None:
    profile = make_profile()
    assert profile.knee(8).concurrency == 4  # 400 >= 0.9 x 420; 200 is not
    assert profile.best_knee().samples_per_s == 400


def test_best_knee_compares_batch_sizes() -> None:
    base = make_profile()
    profile = base.model_copy(update={"points": (*base.points, point(1, 100, 1, batch=1))})
    assert profile.batch_sizes == [1, 8]
    assert profile.knee(1).samples_per_s == 100
    assert profile.best_knee().batch_size == 8


def test_profiles_are_stored_next_to_the_manifest_or_beside_the_archive(tmp_path: Path) -> None:
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    assert profile_path(bundle_dir, "cpu") == bundle_dir / "inf3kit-profile-cpu.json"
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"")
    assert profile_path(archive, "inf2") == tmp_path / "model.profile-inf2.json"
    write_profile(make_profile("inf2"), profile_path(archive, "inf2"))
    write_profile(make_profile("cpu"), profile_path(archive, "cpu"))
    assert [p.target for p in stored_profiles(archive)] == ["cpu", "inf2"]
    assert read_profile(profile_path(archive, "cpu")) == make_profile("cpu")


def test_fails_when_a_profile_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"format_version": 1, "model": "m"}))
    with pytest.raises(ProfileError, match=r"profile .*p.json is invalid: model_version: Field"):
        read_profile(path)
    path.write_text("{")
    with pytest.raises(ProfileError, match="is not valid JSON"):
        read_profile(path)


def test_default_concurrencies_reach_past_the_batch() -> None:
    assert default_concurrencies(8) == [1, 2, 4, 8, 16, 32]
    assert default_concurrencies(64)[-1] == 64


def test_in_process_profile_measures_each_point_on_this_cpu(echo_bundle: Path) -> None:
    profile = profile_in_process(echo_bundle, concurrencies=[1, 4], seconds=0.05)
    assert profile.target == "cpu" and profile.model == "echo"
    assert [(p.batch_size, p.concurrency) for p in profile.points] == [(4, 1), (4, 4)]
    assert all(p.requests >= 1 and p.p99_ms >= p.p50_ms for p in profile.points)
    assert profile.device_points[0].batch_size == 4
    assert profile.model_bytes == (echo_bundle / "model-cpu-b4.pt").stat().st_size
    assert profile.how.startswith("in-process")


def test_fails_when_the_bundle_has_no_variant_for_this_host(echo_bundle: Path) -> None:
    with pytest.raises(ManifestError, match=r"has no cpu variant with batch size in \[16\]"):
        profile_in_process(echo_bundle, batch_sizes=[16], seconds=0.05)


def test_http_profile_measures_a_running_server(echo_bundle: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(echo_bundle, other)
    manifest = other / "inf3kit-manifest.json"
    manifest.write_text(manifest.read_text().replace('"name": "echo"', '"name": "other"'))
    with running_server(echo_bundle, tmp_path / "server.log") as server:
        profile = profile_http(
            echo_bundle, server.url, target="inf2", concurrencies=[2], seconds=0.2
        )
        with pytest.raises(ProfileError, match=r"GET /v2/models/other/config answered 404"):
            profile_http(other, server.url, target="inf2", concurrencies=[1], seconds=0.1)
    assert profile.target == "inf2" and profile.how == f"http {server.url}"
    assert profile.points[0].batch_size == 4  # the server's max_batch_size from /config
    assert profile.points[0].requests >= 1
