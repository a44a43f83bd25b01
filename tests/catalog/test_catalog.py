"""The hardware catalog: public facts, provisional Inf3, user overrides, compatibility."""

from __future__ import annotations

from pathlib import Path

import pytest

from inf3kit.catalog import CATALOG_ENV, CatalogError, load_catalog, load_compatibility
from inf3kit.spec import parse_spec


@pytest.mark.parametrize(
    ("name", "chips", "cores", "memory"),
    [
        ("inf2.xlarge", 1, 2, 32),
        ("inf2.8xlarge", 1, 2, 32),
        ("inf2.24xlarge", 6, 12, 192),
        ("inf2.48xlarge", 12, 24, 384),
        ("trn2.48xlarge", 16, 128, 1536),
        ("trn3.48xlarge", 16, 128, 2304),
    ],
)
def test_neuron_sizes_follow_the_public_chip_facts(
    name: str, chips: int, cores: int, memory: int
) -> None:
    itype = load_catalog().get(name)
    assert (itype.chips, itype.neuron_cores, itype.accelerator_memory_gib) == (chips, cores, memory)


def test_every_family_of_the_issue_is_present_with_sagemaker_variants() -> None:
    catalog = load_catalog()
    assert {"inf1", "inf2", "trn1", "trn2", "trn3", "inf3", "g5", "g6"} <= set(catalog.families)
    assert "ml.inf2.xlarge" in catalog and "ml.inf3.xlarge" in catalog
    assert "ml.trn2.48xlarge" not in catalog


def test_every_price_has_a_source_and_date() -> None:
    for itype in load_catalog().types():
        assert itype.price_source and itype.price_as_of, itype.name


def test_inf3_is_provisional_and_says_where_each_number_comes_from() -> None:
    for itype in load_catalog().types(family="inf3"):
        assert itype.provisional
        assert set(itype.sources) == {"accelerator", "sizes"}
        assert all(s.startswith("provisional:") for s in itype.sources.values())
    assert not load_catalog().get("inf2.xlarge").provisional


def test_gpu_baselines_are_priced_for_cost_comparison() -> None:
    catalog = load_catalog()
    for name in ("g5.xlarge", "g6.xlarge"):
        itype = catalog.get(name)
        assert not itype.is_neuron and itype.price_usd_per_hour


OVERRIDE = """\
accelerators:
  inferentia3: {kind: neuron, neuroncore_generation: v4, neuron_cores_per_chip: 4,
                memory_gib_per_chip: 48, source: "AWS launch post"}
families:
  inf3:
    status: ga
    sources: {}
    sizes:
      inf3.xlarge: {price: 0.5}
  inf9:
    accelerator: inferentia3
    price_source: mine
    price_as_of: "2027-01-01"
    sizes:
      inf9.xlarge: {chips: 1, vcpu: 4, memory_gib: 16, network: "10 Gbps", price: 0.1}
compatibility:
  families:
    inf9: {min_neuron_sdk: "2.28.0", neuron_sdk: "2.28.1", sdk_line: x, dlami_ssm_parameter: /p,
           source: mine}
"""


def test_override_file_changes_numbers_and_adds_families(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(OVERRIDE)
    catalog = load_catalog(path)
    inf3 = catalog.get("inf3.xlarge")
    assert (inf3.status, inf3.neuron_cores, inf3.price_usd_per_hour) == ("ga", 4, 0.5)
    assert inf3.vcpu == 4  # untouched numbers keep the shipped values
    assert catalog.get("inf9.xlarge").accelerator_memory_gib == 48
    assert load_compatibility(path).family("inf9.xlarge").neuron_sdk == "2.28.1"


def test_override_by_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(OVERRIDE)
    monkeypatch.setenv(CATALOG_ENV, str(path))
    assert load_catalog().get("inf3.xlarge").price_usd_per_hour == 0.5


def test_override_by_spec_key_makes_a_new_family_deployable(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(OVERRIDE)
    text = (
        "name: svc\ncatalog: catalog.yaml\nmodel: {bundle: m.tar.gz}\n"
        "fleet: {instance_types: [inf9.xlarge]}\n"
    )
    loaded = parse_spec(text, base_dir=tmp_path)
    assert loaded.catalog.get("inf9.xlarge").family == "inf9"


def test_fails_when_override_file_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("families:\n  inf2:\n    sizes:\n      inf2.xlarge: {chips: zero}\n")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert str(info.value) == (
        f"catalog merged with {path} is invalid: families.inf2.sizes.inf2.xlarge.chips: "
        "Input should be a valid integer, unable to parse string as an integer"
    )


def test_fails_when_override_file_is_missing(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path / "nope.yaml")
    assert (
        str(info.value)
        == f"cannot read catalog file {tmp_path / 'nope.yaml'}: No such file or directory"
    )


def test_compatibility_refuses_an_image_that_does_not_support_the_family() -> None:
    with pytest.raises(ValueError) as info:
        load_compatibility().check_image("djl-neuronx", "ml.inf1.xlarge")
    assert str(info.value) == (
        "serving image 'djl-neuronx' does not support instance family 'inf1' (ml.inf1.xlarge); "
        "it supports inf2, trn1. Fix: pick an instance type of those families, or images that "
        "support inf1: pytorch-inference-neuron."
    )


def test_compatibility_gives_the_dlami_parameter_per_family() -> None:
    compat = load_compatibility()
    assert compat.dlami_parameter("inf2.xlarge").startswith("/aws/service/neuron/dlami/")
    assert "inf3kit-runtime" in compat.images_for("ml.inf3.xlarge")
    with pytest.raises(ValueError, match="instance family 'g5'"):
        compat.family("g5.xlarge")
