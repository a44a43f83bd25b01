"""The spec loader: good specs load, and each bad spec gets an exact, fixable message."""

from __future__ import annotations

from pathlib import Path

import pytest

from inf3kit.spec import SpecError, load_spec, parse_spec

GOOD = """\
name: sentiment
model:
  bundle: s3://models-bucket/sentiment/model.tar.gz
endpoint:
  instance_type: ml.inf2.xlarge
fleet:
  instance_types: [inf3.xlarge, inf2.xlarge]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="t.yaml")
    return [str(p) for p in info.value.problems]


def test_good_spec_loads_with_defaults() -> None:
    spec = parse_spec(GOOD).spec
    assert spec.endpoint is not None and spec.fleet is not None
    assert spec.endpoint.instances.min == 1
    assert spec.fleet.instance_types == ["inf3.xlarge", "inf2.xlarge"]
    assert spec.serving.port == 8080
    assert spec.network.creates_vpc


def test_every_example_validates() -> None:
    examples = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
    assert len(examples) >= 5
    for path in examples:
        load_spec(path)


def test_fails_when_key_is_unknown_with_did_you_mean() -> None:
    text = GOOD.replace("instance_type: ml.inf2.xlarge", "instance_typ: ml.inf2.xlarge")
    assert problems(text) == [
        "endpoint.instance_type (line 5): required but missing. Fix: add it (see docs/spec.md "
        "for its format)",
        "endpoint.instance_typ (line 5): unknown key 'instance_typ'. Did you mean "
        "'instance_type'? Allowed here: instance_type, image, instances, scaling, rollout, "
        "startup_timeout_seconds, download_timeout_seconds, volume_size_gb, data_capture. "
        "Fix: rename or remove it",
    ]


def test_fails_when_top_level_key_is_unknown() -> None:
    assert problems(GOOD + "netwrok: {vpc: new}\n") == [
        "netwrok (line 8): unknown key 'netwrok'. Did you mean 'network'? Allowed here: name, "
        "description, catalog, model, serving, llm, endpoint, fleet, network, monitoring, tags, "
        "environments, delivery. "
        "Fix: rename or remove it"
    ]


def test_fails_when_type_is_wrong() -> None:
    assert problems(GOOD + "serving: {port: http}\n") == [
        "serving.port (line 8): got 'http' (str), expected a whole number. "
        "Fix: write a whole number here"
    ]


def test_fails_when_capacity_is_out_of_range() -> None:
    text = GOOD + "  capacity: {min: -1, max: 5000}\n"
    assert problems(text) == [
        "fleet.capacity.min (line 8): got -1, must be >= 0. Fix: use a value >= 0",
        "fleet.capacity.max (line 8): got 5000, must be <= 1000. Fix: use a value <= 1000",
    ]


def test_fails_when_min_exceeds_max() -> None:
    text = GOOD.replace(
        "instance_type: ml.inf2.xlarge",
        "instance_type: ml.inf2.xlarge\n  instances: {min: 4, max: 2}",
    )
    assert problems(text) == [
        "endpoint.instances (line 6): min (4) is greater than max (2). "
        "Fix: set min <= max, e.g. min 2 or max 4"
    ]


def test_fails_when_instance_type_is_unknown() -> None:
    assert problems(GOOD.replace("ml.inf2.xlarge", "ml.inf2.xlarg")) == [
        "endpoint.instance_type (line 5): unknown instance type 'ml.inf2.xlarg'; did you mean "
        "'ml.inf2.xlarge' or 'ml.inf2.8xlarge' or 'ml.inf2.48xlarge'? Fix: use a type listed by "
        "`inf3kit catalog`, or add it in a catalog override file"
    ]


def test_fails_when_fleet_gets_a_sagemaker_type() -> None:
    assert problems(
        GOOD.replace("[inf3.xlarge, inf2.xlarge]", "[inf3.xlarge, ml.inf2.xlarge]")
    ) == [
        "fleet.instance_types[1] (line 7): 'ml.inf2.xlarge' is a SageMaker type; fleets take EC2 "
        "types. Fix: use 'inf2.xlarge', or move this type to `endpoint.instance_type`"
    ]


def test_fails_when_endpoint_gets_a_fleet_type() -> None:
    assert problems(
        GOOD.replace("instance_type: ml.inf2.xlarge", "instance_type: inf2.xlarge")
    ) == [
        "endpoint.instance_type (line 5): 'inf2.xlarge' is an EC2 type; endpoints take SageMaker "
        "types. Fix: use 'ml.inf2.xlarge', or move this type to `fleet.instance_types`"
    ]


def test_fails_when_a_gpu_type_is_deployed() -> None:
    assert problems(GOOD.replace("[inf3.xlarge, inf2.xlarge]", "[g5.xlarge]")) == [
        "fleet.instance_types[0] (line 7): 'g5.xlarge' is a GPU type (nvidia-a10g), listed only "
        "as a cost baseline; inf3kit deploys to Neuron types. Fix: use an inf*/trn* type, e.g. "
        "'inf2.xlarge'"
    ]


def test_fails_when_fleet_lists_a_type_twice() -> None:
    assert problems(GOOD.replace("[inf3.xlarge, inf2.xlarge]", "[inf2.xlarge, inf2.xlarge]")) == [
        "fleet.instance_types (line 7): instance types 'inf2.xlarge' listed more than once. "
        "Fix: list each type once, in order of preference"
    ]


def test_fails_when_the_pinned_release_has_no_packages_for_the_dlamis_python() -> None:
    old = GOOD.replace("[inf3.xlarge, inf2.xlarge]", "[inf2.xlarge]\n  ami: {neuron_sdk: 2.26.1}")
    [problem] = problems(old)
    assert problem.startswith(
        "fleet (line 7): Neuron 2.26.1 publishes its packages for Python 3.10, 3.11, but the "
        "Neuron DLAMI's python3 is 3.12"
    )
    own = old.replace("{neuron_sdk: 2.26.1}", "{neuron_sdk: 2.26.1, source: id, id: ami-0abc1234}")
    assert parse_spec(own).spec.fleet is not None


def test_fails_when_file_is_empty() -> None:
    assert problems("") == [
        "<spec>: the file is empty. Fix: start from examples/demo.yaml or docs/spec.md"
    ]


def test_fails_when_file_is_not_yaml() -> None:
    assert problems("name: [unclosed\nmodel: x\n") == [
        "<spec> (line 2): not valid YAML: expected ',' or ']', but got ':'. "
        "Fix: check indentation and quoting"
    ]


def test_fails_when_file_is_a_list() -> None:
    assert problems("- name: x\n") == [
        "<spec> (line 1): the spec must be a mapping of sections, got list. "
        "Fix: start from examples/demo.yaml"
    ]


def test_fails_when_name_is_not_dns_safe() -> None:
    assert problems(GOOD.replace("name: sentiment", "name: Sentiment_Model")) == [
        "name (line 1): got 'Sentiment_Model', which does not match "
        "^[a-z][a-z0-9-]{0,30}[a-z0-9]$. Fix: use 2-32 lowercase letters, digits and '-', "
        "starting with a letter (DNS-safe)"
    ]


def test_fails_when_bundle_uri_is_not_an_archive() -> None:
    text = GOOD.replace("s3://models-bucket/sentiment/model.tar.gz", "s3://models-bucket/x.zip")
    assert problems(text) == [
        "model.bundle (line 3): 's3://models-bucket/x.zip' is not an s3 URI of a bundle archive. "
        "Fix: use s3://BUCKET/PATH/model.tar.gz (pack one with `inf3kit bundle`)"
    ]


def test_fails_when_model_is_missing_and_nothing_to_deploy() -> None:
    assert problems("name: sentiment\n") == [
        "model (line 1): required but missing. Fix: add it (see docs/spec.md for its format)"
    ]
    assert problems("name: sentiment\nmodel: {bundle: ./m.tar.gz}\n") == [
        "<spec> (line 1): nothing to deploy: the spec has neither `endpoint` nor `fleet`. "
        "Fix: add an `endpoint:` section (SageMaker) or a `fleet:` section (EC2)"
    ]


def test_fails_when_rollout_strategy_is_unknown() -> None:
    text = GOOD.replace(
        "instance_type: ml.inf2.xlarge",
        "instance_type: ml.inf2.xlarge\n  rollout: {strategy: blue}",
    )
    assert problems(text) == [
        "endpoint.rollout.strategy (line 6): got 'blue'; allowed: 'all_at_once', 'canary', "
        "'linear' or 'rolling'. Fix: use one of those"
    ]


def test_fails_when_warm_pool_meets_mixed_instances() -> None:
    assert problems(GOOD + "  warm_pool: {min_size: 1}\n") == [
        "fleet (line 7): warm pool: cannot be combined with 2 instance types (a mixed instances "
        "policy); AWS refuses a warm pool on such a group. Fix: drop the warm pool, or keep a "
        "single instance type with spot_percent 0"
    ]


def test_fails_when_warm_pool_would_hibernate_neuron_instances() -> None:
    text = GOOD.replace("[inf3.xlarge, inf2.xlarge]", "[inf2.xlarge]")
    assert problems(text + "  warm_pool: {min_size: 1, state: hibernated}\n") == [
        "fleet (line 7): warm pool: state 'hibernated' needs an instance family that hibernates, "
        "and no Inferentia or Trainium family does (EC2 hibernation prerequisites). Fix: use "
        "state 'stopped' (pay for volumes only) or 'running'"
    ]


def test_fails_when_a_fleet_runs_on_inf1() -> None:
    text = GOOD.replace("[inf3.xlarge, inf2.xlarge]", "[inf2.xlarge, inf1.xlarge]")
    assert problems(text) == [
        "fleet.instance_types[1] (line 7): inf1.xlarge: the Neuron DLAMIs no longer support Inf1, "
        "and an inf3kit fleet installs torch-neuronx (Neuron 2.x), which cannot drive "
        "Inferentia1 (Neuron docs, Inf1 support matrix and DLAMI release notes). Fix: use a "
        "family a fleet runs on (inf2, inf3, trn1, trn2, trn3), or serve inf1 on a SageMaker "
        "endpoint (images: pytorch-inference-neuron)"
    ]


def test_default_rollout_follows_the_instance_count() -> None:
    one = parse_spec(GOOD).spec.endpoint
    two = parse_spec(GOOD.replace("ml.inf2.xlarge\n", "ml.inf2.xlarge\n  instances: {min: 2}\n"))
    assert one is not None and one.rollout_strategy == "all_at_once"
    assert two.spec.endpoint is not None and two.spec.endpoint.rollout_strategy == "canary"


def test_fails_when_a_canary_would_be_the_whole_fleet() -> None:
    text = GOOD.replace("ml.inf2.xlarge\n", "ml.inf2.xlarge\n  rollout: {strategy: canary}\n")
    assert problems(text) == [
        "endpoint (line 5): rollout: canary shifts a share of at most 50% of the instances, but "
        "instances.min is 1, so the smallest share is the whole fleet. Fix: set instances.min to "
        "2 or more, or use strategy all_at_once (still blue/green, baked and rolled back on "
        "alarms)"
    ]


def test_fails_when_guardrails_are_asked_of_inf1() -> None:
    text = GOOD.replace(
        "ml.inf2.xlarge\n",
        "ml.inf1.xlarge\n  image: pytorch-inference-neuron\n  instances: {min: 2}\n"
        "  rollout: {strategy: linear}\n",
    ).replace("fleet:\n  instance_types: [inf3.xlarge, inf2.xlarge]\n", "")
    assert problems(text) == [
        "endpoint (line 5): rollout: linear on ml.inf1.xlarge: SageMaker deployment guardrails "
        "do not support Inf1 endpoints: an update falls back to blue/green all at once with no "
        'final baking period (SageMaker developer guide, deployment guardrails "Exclusions"). '
        "Fix: use strategy all_at_once, which is what SageMaker would do anyway"
    ]


def test_fails_when_account_is_not_twelve_digits() -> None:
    text = GOOD + "environments:\n  prod: {account: '1234', region: us-east-1}\n"
    assert problems(text) == [
        "environments.prod.account (line 9): got '1234', which does not match ^\\d{12}$. "
        "Fix: use the 12-digit AWS account id, quoted"
    ]


def test_fails_when_ami_id_is_given_without_source_id() -> None:
    text = GOOD + "  ami: {source: dlami, id: ami-0123456789abcdef0}\n"
    assert problems(text) == [
        "fleet.ami (line 8): `id` is only read with source 'id', but source is 'dlami'. "
        "Fix: set `source: id`, or remove `id`"
    ]


def test_reports_every_problem_at_once() -> None:
    text = "name: X\nmodel: {bundle: ftp://x}\nendpoint: {instance_type: ml.nope}\nfoo: 1\n"
    found = problems(text)
    assert [p.split(" ")[0] for p in found] == [
        "name",
        "model.bundle",
        "endpoint.instance_type",
        "foo",
    ]


def test_fails_when_file_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "absent.yaml")
    assert [str(p) for p in info.value.problems] == [
        "<spec>: cannot read the file: No such file or directory"
    ]


def test_fails_when_a_latency_alarm_is_not_below_the_request_deadline() -> None:
    text = GOOD.replace(
        "instance_type: ml.inf2.xlarge",
        "instance_type: ml.inf2.xlarge\n  rollout: {latency_alarm_ms: 5000}",
    )
    assert problems(text + "monitoring: {latency_p99_ms: 6000}\n") == [
        "<spec> (line 1): endpoint.rollout.latency_alarm_ms (5000) and "
        "monitoring.latency_p99_ms (6000) must be below serving.request_timeout_ms (5000): "
        "requests that slow are answered 504 at the deadline, so the alarm could never fire. "
        "Fix: lower the threshold, or raise serving.request_timeout_ms"
    ]
    parse_spec(text.replace("5000}", "4999}"))
