"""SageMaker rules the endpoint templates rely on."""

from __future__ import annotations

from tests.aws_contract.conftest import StackTemplate, ref, text_of

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


def _variants(templates: list[StackTemplate]) -> list[tuple[StackTemplate, dict]]:
    return [
        (t, variant)
        for t in templates
        for config in t.resources("AWS::SageMaker::EndpointConfig").values()
        for variant in config["Properties"]["ProductionVariants"]
    ]


def _llm_models(templates: list[StackTemplate]) -> list[tuple[StackTemplate, str, dict]]:
    """Models served by the LMI engine container (LlmEndpoint), with their logical ids."""
    found = [
        (t, name, m["Properties"])
        for t in templates
        for name, m in t.resources("AWS::SageMaker::Model").items()
        if "OPTION_ROLLING_BATCH" in m["Properties"]["PrimaryContainer"].get("Environment", {})
    ]
    assert found, "no example serves an LLM on an endpoint"
    return found


def test_startup_and_download_timeouts_are_within_sagemakers_range(
    templates: list[StackTemplate],
) -> None:
    """SageMaker API reference, ProductionVariant: ContainerStartupHealthCheckTimeoutInSeconds
    and ModelDataDownloadTimeoutInSeconds take 60..3600 seconds."""
    variants = _variants(templates)
    assert variants
    for template, variant in variants:
        for key in (
            "ContainerStartupHealthCheckTimeoutInSeconds",
            "ModelDataDownloadTimeoutInSeconds",
        ):
            assert 60 <= variant[key] <= 3600, (template.name, key, variant[key])


def test_uncompressed_model_data_is_a_prefix_ending_in_a_slash(
    templates: list[StackTemplate],
) -> None:
    """SageMaker API reference, S3ModelDataSource: with S3DataType S3Prefix, S3Uri is a key name
    prefix that "always ends with a forward slash"; CompressionType None serves the objects as
    they are ("Deploy uncompressed models")."""
    sources = [
        (t, m["PrimaryContainer"]["ModelDataSource"]["S3DataSource"])
        for t, m in _models(templates)
        if "ModelDataSource" in m["PrimaryContainer"]
    ]
    assert sources, "no example deploys an uncompressed model directory"
    for template, source in sources:
        assert source["S3DataType"] == "S3Prefix", template.name
        assert source["CompressionType"] == "None", template.name
        assert source["S3Uri"].startswith("s3://") and source["S3Uri"].endswith("/")


def test_the_role_may_list_and_read_an_uncompressed_prefix(templates: list[StackTemplate]) -> None:
    """SageMaker developer guide, "CreateModel API: Execution Role Permissions" (s3:GetObject,
    s3:ListBucket): SageMaker lists an S3Prefix source and downloads each object under it with
    the model's execution role."""
    checked = 0
    for template, model in _models(templates):
        source = model["PrimaryContainer"].get("ModelDataSource", {}).get("S3DataSource")
        if source is None:
            continue
        bucket, _, prefix = source["S3Uri"].removeprefix("s3://").partition("/")
        statements = template.role_statements(ref(model["ExecutionRoleArn"]))
        reads = [text_of(s["Resource"]) for s in statements if s["Action"] == "s3:GetObject"]
        lists = [s for s in statements if s["Action"] == "s3:ListBucket"]
        assert any(r.endswith(f":s3:::{bucket}/{prefix}*") for r in reads), template.name
        assert any(
            text_of(s["Resource"]).endswith(f":s3:::{bucket}")
            and f"{prefix}*" in s["Condition"]["StringLike"]["s3:prefix"]
            for s in lists
        ), template.name
        checked += 1
    assert checked


def test_the_engine_stops_loading_no_earlier_than_sagemaker(templates: list[StackTemplate]) -> None:
    """LMI deployment guide, "Container and Model Configurations": option.model_loading_timeout
    (default 1800 s) stops a load in the container; on SageMaker the container startup health
    check timeout must be at least as long, or SageMaker replaces a model that is still loading."""
    startup = {
        (t.name, ref(v["ModelName"])): v["ContainerStartupHealthCheckTimeoutInSeconds"]
        for t, v in _variants(templates)
    }
    for template, name, model in _llm_models(templates):
        loading = int(model["PrimaryContainer"]["Environment"]["OPTION_MODEL_LOADING_TIMEOUT"])
        assert loading <= startup[(template.name, name)], template.name


def test_llm_endpoints_scale_on_a_concurrency_metric_sagemaker_offers(
    templates: list[StackTemplate],
) -> None:
    """SageMaker developer guide, "Define a scaling policy" (high-resolution predefined metric
    SageMakerVariantConcurrentRequestsPerModelHighResolution, CloudWatch ConcurrentRequestsPerModel,
    which counts a streamed request until its last token), and the Application Auto Scaling API
    reference, PredefinedMetricSpecification: only the listed SageMaker variant types exist."""
    offered = {
        "SageMakerVariantInvocationsPerInstance",
        "SageMakerVariantConcurrentRequestsPerModelHighResolution",
        "SageMakerVariantProvisionedConcurrencyUtilization",
    }
    llm_stacks = {t.name for t, _, _ in _llm_models(templates)}
    for template in templates:
        for policy in template.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values():
            config = policy["Properties"].get("TargetTrackingScalingPolicyConfiguration", {})
            kind = config.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType", "")
            if not kind.startswith("SageMaker"):
                continue
            assert kind in offered, (template.name, kind)
            if template.name in llm_stacks:
                assert kind == "SageMakerVariantConcurrentRequestsPerModelHighResolution"


def test_models_that_download_at_startup_are_not_network_isolated(
    templates: list[StackTemplate],
) -> None:
    """SageMaker developer guide, "Run training and inference containers in internet-free mode":
    a network-isolated container makes no outbound call, not even to S3, so an engine that
    downloads Hub weights or reads compiled artefacts from S3 itself needs isolation off."""
    for template, _, model in _llm_models(templates):
        env = model["PrimaryContainer"]["Environment"]
        downloads = "HF_MODEL_ID" in env or env.get("OPTION_COMPILED_GRAPH_PATH", "").startswith(
            "s3://"
        )
        if downloads:
            assert model["EnableNetworkIsolation"] is False, template.name


def test_secrets_reach_containers_as_dynamic_references(templates: list[StackTemplate]) -> None:
    """CloudFormation user guide, "Get values stored in other services using dynamic
    references": `{{resolve:secretsmanager:...}}` is resolved when the resource is created, so
    the template (and the assembly a pipeline stores) carries the secret's name, never its
    value."""
    tokens = [
        (t.name, m["PrimaryContainer"]["Environment"]["HF_TOKEN"])
        for t, _, m in _llm_models(templates)
        if "HF_TOKEN" in m["PrimaryContainer"]["Environment"]
    ]
    assert tokens, "no example serves a gated Hub model"
    for name, token in tokens:
        assert token.startswith("{{resolve:secretsmanager:") and token.endswith("}}"), name
