"""SageMaker rules the endpoint templates rely on."""

from __future__ import annotations

from tests.aws_contract.conftest import StackTemplate, ref

VPC_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
}


def _models(templates: list[StackTemplate]) -> list[tuple[StackTemplate, dict]]:
    return [
        (t, m["Properties"])
        for t in templates
        for m in t.resources("AWS::SageMaker::Model").values()
    ]


def test_a_model_in_a_vpc_may_manage_its_network_interfaces(templates: list[StackTemplate]) -> None:
    """SageMaker developer guide, "CreateModel API: Execution Role Permissions": a model with
    VpcConfig needs the EC2 network-interface and describe actions on its execution role."""
    in_vpc = [(t, m) for t, m in _models(templates) if "VpcConfig" in m]
    assert in_vpc, "no example puts an endpoint in a VPC"
    for template, model in in_vpc:
        missing = VPC_ACTIONS - template.role_actions(ref(model["ExecutionRoleArn"]))
        assert not missing, (template.name, sorted(missing))


def test_the_execution_role_may_create_its_log_group(templates: list[StackTemplate]) -> None:
    """SageMaker developer guide, "CreateModel API: Execution Role Permissions": the role needs
    logs:CreateLogGroup, logs:CreateLogStream and logs:PutLogEvents for the endpoint's logs."""
    models = _models(templates)
    assert models
    for template, model in models:
        actions = template.role_actions(ref(model["ExecutionRoleArn"]))
        assert {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"} <= actions


def test_updates_keep_the_instance_count_autoscaling_chose(templates: list[StackTemplate]) -> None:
    """SageMaker API reference, UpdateEndpoint: without RetainAllVariantProperties the new
    config's initial instance count replaces what autoscaling set ("Update or delete endpoints
    that use automatic scaling")."""
    endpoints = [e for t in templates for e in t.resources("AWS::SageMaker::Endpoint").values()]
    assert endpoints
    for endpoint in endpoints:
        props = endpoint["Properties"]
        assert props["RetainAllVariantProperties"] is True
        excluded = [p["VariantPropertyType"] for p in props["ExcludeRetainedVariantProperties"]]
        assert "DesiredInstanceCount" not in excluded


def test_traffic_shifting_rollouts_have_two_instances(templates: list[StackTemplate]) -> None:
    """SageMaker API reference, TrafficRoutingConfig and RollingUpdatePolicy: a canary is at
    most 50% and a linear step 10-50% of the variant's instances, a rolling batch at most 50%;
    with one instance no step is valid."""
    checked = 0
    for template in templates:
        configs = template.resources("AWS::SageMaker::EndpointConfig")
        targets = template.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
        for endpoint in template.resources("AWS::SageMaker::Endpoint").values():
            deployment = endpoint["Properties"]["DeploymentConfig"]
            routing = deployment.get("BlueGreenUpdatePolicy", {}).get(
                "TrafficRoutingConfiguration", {}
            )
            if routing.get("Type") == "ALL_AT_ONCE":
                continue
            checked += 1
            config = configs[ref(endpoint["Properties"]["EndpointConfigName"])]
            (variant,) = config["Properties"]["ProductionVariants"]
            assert variant["InitialInstanceCount"] >= 2, template.name
            assert all(t["Properties"]["MinCapacity"] >= 2 for t in targets), template.name
    assert checked, "no example uses a canary, linear or rolling rollout"


def test_inf1_endpoints_roll_out_all_at_once(templates: list[StackTemplate]) -> None:
    """SageMaker developer guide, deployment guardrails "Exclusions": Inf1 endpoints fall back to
    blue/green all at once with no baking, so another strategy would be a false promise."""
    for template in templates:
        configs = template.resources("AWS::SageMaker::EndpointConfig")
        for endpoint in template.resources("AWS::SageMaker::Endpoint").values():
            config = configs[ref(endpoint["Properties"]["EndpointConfigName"])]
            (variant,) = config["Properties"]["ProductionVariants"]
            if variant["InstanceType"].startswith("ml.inf1."):
                deployment = endpoint["Properties"]["DeploymentConfig"]
                routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
                assert routing["Type"] == "ALL_AT_ONCE", template.name
