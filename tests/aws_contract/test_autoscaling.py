"""EC2 Auto Scaling rules the fleet templates rely on."""

from __future__ import annotations

import re

from tests.aws_contract.conftest import StackTemplate, ref, text_of

NEURON_PREFIXES = ("inf", "trn")


def _warm_groups(templates: list[StackTemplate]) -> list[tuple[StackTemplate, str, dict]]:
    found = []
    for template in templates:
        for pool in template.resources("AWS::AutoScaling::WarmPool").values():
            group = ref(pool["Properties"]["AutoScalingGroupName"])
            found.append((template, group, pool))
    assert found, "no example has a warm pool"
    return found


def test_warm_pool_instances_wait_for_their_bootstrap(templates: list[StackTemplate]) -> None:
    """EC2 Auto Scaling user guide, "Use lifecycle hooks with a warm pool": without a launch
    lifecycle hook a warm-pool instance is stopped as soon as it launches, before user data ran.
    The hook must be completable by the instance role."""
    for template, group, _ in _warm_groups(templates):
        hooks = [
            h["Properties"]
            for h in template.resources("AWS::AutoScaling::LifecycleHook").values()
            if ref(h["Properties"]["AutoScalingGroupName"]) == group
        ]
        launch = [
            h for h in hooks if h["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
        ]
        assert len(launch) == 1, template.name
        assert launch[0]["DefaultResult"] == "ABANDON"
        roles = {
            ref(r)
            for p in template.resources("AWS::IAM::InstanceProfile").values()
            for r in p["Properties"]["Roles"]
        }
        assert any("autoscaling:CompleteLifecycleAction" in template.role_actions(r) for r in roles)


def test_warm_pool_instances_bootstrap_on_every_boot(templates: list[StackTemplate]) -> None:
    """cloud-init runs user data on the first boot only (cloud-init docs, "User data formats" /
    scripts-per-boot), and a warm-pool instance boots again when it goes into service."""
    for template, _, _ in _warm_groups(templates):
        (lt,) = template.resources("AWS::EC2::LaunchTemplate").values()
        parts = lt["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
        text = "".join(p for p in parts if isinstance(p, str))
        assert "/var/lib/cloud/scripts/per-boot/" in text, template.name


def test_updates_replace_warm_pool_instances(templates: list[StackTemplate]) -> None:
    """CloudFormation template reference, AWS::AutoScaling::WarmPool: a rolling update replaces
    InService instances only, so the pool would keep the old launch template; a replacing
    update replaces the group and its pool."""
    for template, group, _ in _warm_groups(templates):
        policy = template.body["Resources"][group]["UpdatePolicy"]
        assert policy["AutoScalingReplacingUpdate"]["WillReplace"] is True, template.name
        assert "AutoScalingRollingUpdate" not in policy


def test_neuron_warm_pools_do_not_hibernate(templates: list[StackTemplate]) -> None:
    """EC2 user guide, "Prerequisites for EC2 instance hibernation": no Inferentia or Trainium
    family is among the instance families that support hibernation."""
    for template, _, pool in _warm_groups(templates):
        assert pool["Properties"].get("PoolState") != "Hibernated", template.name


def test_fleets_never_run_on_inf1(templates: list[StackTemplate]) -> None:
    """Neuron docs: the Neuron DLAMIs no longer support Inf1, and torch-neuronx (Neuron 2.x),
    which fleets install, cannot drive Inferentia1."""
    types = []
    for template in templates:
        for lt in template.resources("AWS::EC2::LaunchTemplate").values():
            types.append(lt["Properties"]["LaunchTemplateData"].get("InstanceType"))
        for group in template.resources("AWS::AutoScaling::AutoScalingGroup").values():
            policy = group["Properties"].get("MixedInstancesPolicy", {})
            overrides = policy.get("LaunchTemplate", {}).get("Overrides", [])
            types += [o["InstanceType"] for o in overrides]
    neuron = [t for t in types if isinstance(t, str) and t.startswith(NEURON_PREFIXES)]
    assert neuron, "no example runs a fleet"
    assert not [t for t in neuron if t.startswith("inf1.")]


def test_instances_may_read_every_object_they_download_at_boot(
    templates: list[StackTemplate],
) -> None:
    """Amazon S3 user guide, "Required permissions for Amazon S3 API operations": GetObject
    needs s3:GetObject on the object; the instance downloads with its role ("IAM roles for
    Amazon EC2"). The runtime wheel and the bundle are fetched at boot, so a missing grant
    fails every launch."""
    checked = 0
    for template in templates:
        profiles = template.resources("AWS::IAM::InstanceProfile")
        for lt in template.resources("AWS::EC2::LaunchTemplate").values():
            data = lt["Properties"]["LaunchTemplateData"]
            if "UserData" not in data:
                continue
            objects = re.findall(r"s3://<t>/([^\s'\"]+)", text_of(data["UserData"]["Fn::Base64"]))
            (role,) = profiles[ref(data["IamInstanceProfile"]["Arn"])]["Properties"]["Roles"]
            readable = {
                text_of(resource).rsplit("/", 1)[-1]
                for statement in template.role_statements(ref(role))
                if "s3:GetObject" in statement["Action"]
                for resource in (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
            }
            assert any(o.endswith(".whl") for o in objects), template.name  # the runtime wheel
            assert set(objects) <= readable, (template.name, set(objects) - readable)
            checked += 1
    assert checked, "no example has a fleet"
