"""NeuronFleet: every resource property the issue lists, and every validation message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template

from inf3kit import __version__
from inf3kit.constructs import (
    NO_FALLBACK_WARNING_ID,
    PROVISIONAL_WARNING_ID,
    FixedImage,
    NeuronFleet,
    RuntimeSettings,
    WarmPool,
)
from inf3kit.constructs.fleet_user_data import data_volume_discovery

CERT = "arn:aws:acm:us-east-1:111122223333:certificate/abc"


def _stack(
    app: cdk.App, name: str, region: str | None = None
) -> tuple[cdk.Stack, ec2.Vpc, s3.IBucket]:
    env = cdk.Environment(account="111122223333", region=region) if region else None
    stack = cdk.Stack(app, name, env=env)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    bucket = s3.Bucket.from_bucket_name(stack, "Models", "models-bucket")
    return stack, vpc, bucket


def _fleet(stack: cdk.Stack, vpc: ec2.IVpc, bucket: s3.IBucket, **props: object) -> NeuronFleet:
    props.setdefault("instance_types", ["inf2.xlarge"])
    return NeuronFleet(
        stack,
        "Fleet",
        vpc=vpc,
        bundle_bucket=bucket,
        bundle_key="ranker/model.tar.gz",
        **props,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def stacks() -> dict[str, cdk.Stack]:
    app = cdk.App()
    made = {}
    stack, vpc, bucket = _stack(app, "Mixed")
    _fleet(
        stack,
        vpc,
        bucket,
        instance_types=["inf3.xlarge", "inf2.xlarge"],
        min_capacity=2,
        max_capacity=10,
    )
    made["mixed"] = stack
    stack, vpc, bucket = _stack(app, "Warm", region="us-east-1")
    _fleet(
        stack,
        vpc,
        bucket,
        warm_pool=WarmPool(min_size=2),
        data_volume_size=cdk.Size.gibibytes(200),
        drain=cdk.Duration.seconds(60),
        startup_timeout=cdk.Duration.minutes(30),
    )
    made["warm"] = stack
    stack, vpc, bucket = _stack(app, "Spot")
    _fleet(
        stack,
        vpc,
        bucket,
        instance_types=["inf2.xlarge", "inf2.8xlarge"],
        spot_percent=40,
        requests_per_instance=None,
        neuroncore_utilization_percent=None,
    )
    made["spot"] = stack
    stack, vpc, bucket = _stack(app, "Public")
    _fleet(
        stack,
        vpc,
        bucket,
        public=True,
        certificate=acm.Certificate.from_certificate_arn(stack, "Cert", CERT),
    )
    made["public"] = stack
    stack, vpc, bucket = _stack(app, "OnlyInf3")
    _fleet(stack, vpc, bucket, instance_types=["inf3.xlarge"], neuron_sdk="2.27.1")
    made["only_inf3"] = stack
    return made


@pytest.fixture(scope="module")
def templates(stacks: dict[str, cdk.Stack]) -> dict[str, Template]:
    return {name: Template.from_stack(stack) for name, stack in stacks.items()}


# --- launch template ----------------------------------------------------------------------


def test_launch_template_requires_imdsv2_hop_limit_1_detailed_monitoring_no_public_ip(
    templates: dict[str, Template],
) -> None:
    templates["mixed"].has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "MetadataOptions": {
                        "HttpTokens": "required",
                        "HttpPutResponseHopLimit": 1,
                        "InstanceMetadataTags": "enabled",
                    },
                    "Monitoring": {"Enabled": True},
                    "NetworkInterfaces": [
                        Match.object_like({"AssociatePublicIpAddress": False, "DeviceIndex": 0})
                    ],
                    "IamInstanceProfile": Match.any_value(),
                    "InstanceType": Match.absent(),
                }
            )
        },
    )


def test_root_and_data_volumes_are_encrypted_with_kms(templates: dict[str, Template]) -> None:
    encrypted = {
        "Encrypted": True,
        "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^FleetKey"), "Arn"]},
        "VolumeType": "gp3",
        "DeleteOnTermination": True,
    }
    templates["warm"].has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "InstanceType": "inf2.xlarge",
                    "BlockDeviceMappings": [
                        {"DeviceName": "/dev/sda1", "Ebs": {**encrypted, "VolumeSize": 150}},
                        {"DeviceName": "/dev/sdf", "Ebs": {**encrypted, "VolumeSize": 200}},
                    ],
                }
            )
        },
    )


def test_key_lets_ec2_use_it_for_group_volumes_in_this_account_only(
    templates: dict[str, Template],
) -> None:
    templates["mixed"].has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "EbsThroughEc2InThisAccount",
                                "Principal": {"AWS": "*"},
                                "Action": Match.array_with(["kms:Decrypt", "kms:CreateGrant"]),
                                "Condition": {
                                    "StringEquals": {
                                        "kms:CallerAccount": {"Ref": "AWS::AccountId"},
                                        "kms:ViaService": {
                                            "Fn::Join": [
                                                "",
                                                ["ec2.", {"Ref": "AWS::Region"}, ".amazonaws.com"],
                                            ]
                                        },
                                    }
                                },
                            }
                        )
                    ]
                )
            },
        },
    )


def test_user_data_installs_the_runtime_and_runs_bootstrap(templates: dict[str, Template]) -> None:
    lt = templates["warm"].find_resources("AWS::EC2::LaunchTemplate")
    (resource,) = lt.values()
    parts = resource["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "<ref>" for p in parts)
    assert text.startswith(
        '#!/bin/bash\ntrap \'logger -s -t inf3kit "user data failed at line $LINENO"; '
        "aws cloudformation signal-resource --status FAILURE --region <ref> --stack-name Warm "
        "--logical-resource-id FleetASG"
    )
    # The Neuron 2.27.1 compiler, framework and PyTorch of the matrix, at their exact versions.
    assert (
        "pip install --quiet --extra-index-url https://pip.repos.neuron.amazonaws.com "
        f"'/opt/inf3kit/inf3kit-{__version__}-py3-none-any.whl[serve]' "
        "torch-neuronx==2.9.0.2.11.19912 neuronx-cc==2.22.12471.0 torch==2.9.0\n"
    ) in text
    assert (
        "/opt/inf3kit/venv/bin/inf3kit bootstrap --bundle s3://models-bucket/ranker/model.tar.gz"
        in text
    )
    assert "--port 8080 --region <ref> --stack Warm --resource FleetASG" in text
    assert (
        "--ready-timeout 1800 --lifecycle-hook inf3kit-bootstrap --env INF3KIT_GRACE_SECONDS=60"
        in text
    )
    # The bootstrap runs from cloud-init's per-boot folder: now, and on every later boot.
    assert (
        "cat > /var/lib/cloud/scripts/per-boot/inf3kit-bootstrap <<'INF3KIT_BOOT'\n#!/bin/bash\n"
        "exec /opt/inf3kit/venv/bin/inf3kit bootstrap"
    ) in text
    assert text.endswith(
        "chmod 0755 /var/lib/cloud/scripts/per-boot/inf3kit-bootstrap\n"
        "/var/lib/cloud/scripts/per-boot/inf3kit-bootstrap"
    )
    # The EBS data volume is found by its by-id link, formatted and mounted at /opt/inf3kit.
    assert data_volume_discovery() in text
    assert (
        'if [ -n "$dev" ]; then mkfs.xfs -q "$dev"; mount "$dev" /opt/inf3kit; '
        'echo "UUID=$(blkid -s UUID -o value "$dev") /opt/inf3kit xfs defaults,nofail 0 2" '
        ">> /etc/fstab; fi"
    ) in text


def test_user_data_has_no_data_volume_step_without_a_data_volume(
    templates: dict[str, Template],
) -> None:
    (resource,) = templates["mixed"].find_resources("AWS::EC2::LaunchTemplate").values()
    parts = resource["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    text = "".join(p for p in parts if isinstance(p, str))
    assert "Elastic_Block_Store" not in text
    assert "mkfs" not in text


def _disks(tmp_path: Path, links: dict[str, str]) -> Path:
    """A fake /dev (disk files) and /dev/disk/by-id (links to them, as udev makes them)."""
    dev = tmp_path / "dev"
    by_id = dev / "disk" / "by-id"
    by_id.mkdir(parents=True)
    for name, target in links.items():
        (dev / target).touch()
        (by_id / name).symlink_to(f"../../{target}")
    return dev


ROOT_EBS = "nvme-Amazon_Elastic_Block_Store_vol0aaaaaaaaaaaaaaa1"
DATA_EBS = "nvme-Amazon_Elastic_Block_Store_vol0bbbbbbbbbbbbbbb2"
STORE = "nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1111111111111111"


@pytest.mark.parametrize(
    ("links", "picked"),
    [
        pytest.param(
            {
                # trn: instance storage enumerates before the data volume
                f"{STORE}1": "nvme0n1",
                f"{STORE}2": "nvme1n1",
                ROOT_EBS: "nvme2n1",
                f"{ROOT_EBS}-part1": "nvme2n1p1",
                f"{ROOT_EBS}_1": "nvme2n1",
                f"{ROOT_EBS}_1-part1": "nvme2n1p1",
                DATA_EBS: "nvme3n1",
                f"{DATA_EBS}_1": "nvme3n1",
            },
            "nvme3n1",
            id="root+data+instance-store",
        ),
        pytest.param(
            {ROOT_EBS: "nvme0n1", f"{ROOT_EBS}-part1": "nvme0n1p1", DATA_EBS: "nvme1n1"},
            "nvme1n1",
            id="root+data",
        ),
        pytest.param(
            {ROOT_EBS: "nvme0n1", f"{ROOT_EBS}-part1": "nvme0n1p1", f"{STORE}1": "nvme1n1"},
            "",
            id="no-data-volume",
        ),
        pytest.param({}, "", id="no-ebs-links"),
    ],
)
def test_data_volume_discovery_picks_the_ebs_data_volume_and_never_fails(
    tmp_path: Path, links: dict[str, str], picked: str
) -> None:
    dev = _disks(tmp_path, links)
    root_disk = next((t for n, t in links.items() if n == ROOT_EBS), "")
    root = f"{dev}/{root_disk}p1 {dev}/{root_disk}" if root_disk else ""
    script = data_volume_discovery(by_id=f"{dev}/disk/by-id", root=root, wait_seconds=1)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f'{script}; echo "picked=$dev"'],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"picked={dev / picked if picked else ''}\n"


def test_data_volume_discovery_without_a_by_id_directory_picks_nothing(tmp_path: Path) -> None:
    script = data_volume_discovery(by_id=f"{tmp_path}/missing", root="", wait_seconds=1)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f'{script}; echo "picked=$dev"'],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "picked=\n", "")


def test_instance_role_reads_only_the_bundle_object_and_signals_only_its_stack(
    templates: dict[str, Template],
) -> None:
    templates["mixed"].has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "ReadBundle",
                            "Action": "s3:GetObject",
                            "Effect": "Allow",
                            "Resource": {
                                "Fn::Join": [
                                    "",
                                    [
                                        "arn:",
                                        {"Ref": "AWS::Partition"},
                                        ":s3:::models-bucket/ranker/model.tar.gz",
                                    ],
                                ]
                            },
                        },
                        {
                            "Sid": "PublishNeuronMetrics",
                            "Action": "cloudwatch:PutMetricData",
                            "Effect": "Allow",
                            "Resource": "*",
                            "Condition": {
                                "StringEquals": {"cloudwatch:namespace": "Inf3kit/Neuron"}
                            },
                        },
                        {
                            "Sid": "SignalBootstrapResult",
                            "Action": "cloudformation:SignalResource",
                            "Effect": "Allow",
                            "Resource": {"Ref": "AWS::StackId"},
                        },
                    ]
                )
            }
        },
    )
    templates["mixed"].has_resource_properties(
        "AWS::IAM::Role",
        {
            "ManagedPolicyArns": [
                {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":iam::aws:policy/AmazonSSMManagedInstanceCore",
                        ],
                    ]
                }
            ]
        },
    )


# --- Auto Scaling group ----------------------------------------------------------------------


def test_mixed_instances_overrides_keep_the_given_order_with_prioritized_on_demand(
    templates: dict[str, Template],
) -> None:
    templates["mixed"].has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "MinSize": "2",
            "MaxSize": "10",
            "HealthCheckType": "ELB",
            # The estimated default (a bundle of unknown size is taken as 2 GiB): 26 minutes.
            "HealthCheckGracePeriod": 26 * 60,
            "VPCZoneIdentifier": Match.array_with(
                [Match.object_like({"Ref": Match.string_like_regexp("PrivateSubnet1")})]
            ),
            "MixedInstancesPolicy": {
                "InstancesDistribution": {
                    "OnDemandAllocationStrategy": "prioritized",
                    "OnDemandBaseCapacity": 0,
                    "OnDemandPercentageAboveBaseCapacity": 100,
                    "SpotAllocationStrategy": "capacity-optimized-prioritized",
                },
                "LaunchTemplate": Match.object_like(
                    {
                        "Overrides": [
                            {"InstanceType": "inf3.xlarge"},
                            {"InstanceType": "inf2.xlarge"},
                        ]
                    }
                ),
            },
            "CapacityRebalance": Match.absent(),
        },
    )


def test_spot_share_turns_on_capacity_rebalancing(templates: dict[str, Template]) -> None:
    templates["spot"].has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "CapacityRebalance": True,
            "MixedInstancesPolicy": Match.object_like(
                {
                    "InstancesDistribution": Match.object_like(
                        {"OnDemandPercentageAboveBaseCapacity": 60}
                    )
                }
            ),
        },
    )
    templates["spot"].resource_count_is("AWS::AutoScaling::ScalingPolicy", 0)


def test_rolling_update_and_creation_wait_for_the_bootstrap_signals(
    templates: dict[str, Template],
) -> None:
    templates["mixed"].has_resource(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "CreationPolicy": {"ResourceSignal": {"Count": 2, "Timeout": "PT26M"}},
            "UpdatePolicy": Match.object_like(
                {
                    "AutoScalingRollingUpdate": Match.object_like(
                        {
                            "MaxBatchSize": 1,
                            "MinInstancesInService": 2,
                            "WaitOnResourceSignals": True,
                            "PauseTime": "PT26M",
                        }
                    )
                }
            ),
        },
    )


def test_warm_pool_keeps_prepared_instances_stopped(templates: dict[str, Template]) -> None:
    templates["warm"].has_resource_properties(
        "AWS::AutoScaling::WarmPool",
        {"MinSize": 2, "PoolState": "Stopped", "InstanceReusePolicy": {"ReuseOnScaleIn": True}},
    )
    templates["warm"].has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {"LaunchTemplate": Match.any_value(), "MixedInstancesPolicy": Match.absent()},
    )
    templates["mixed"].resource_count_is("AWS::AutoScaling::WarmPool", 0)


def test_termination_hook_waits_for_the_drain(templates: dict[str, Template]) -> None:
    templates["warm"].has_resource_properties(
        "AWS::AutoScaling::LifecycleHook",
        {
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "HeartbeatTimeout": 90,
            "DefaultResult": "CONTINUE",
        },
    )


def test_scales_on_requests_per_target_and_on_neuroncore_utilisation(
    templates: dict[str, Template],
) -> None:
    template = templates["mixed"]
    template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ALBRequestCountPerTarget",
                    "ResourceLabel": Match.any_value(),
                },
                "TargetValue": 400,
            },
        },
    )
    template.has_resource_properties(
        "AWS::AutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingConfiguration": {
                "CustomizedMetricSpecification": {
                    "Namespace": "Inf3kit/Neuron",
                    "MetricName": "NeuronCoreUtilization",
                    "Dimensions": [
                        {
                            "Name": "AutoScalingGroupName",
                            "Value": {"Ref": Match.string_like_regexp("^FleetASG")},
                        }
                    ],
                    "Statistic": "Average",
                    "Unit": "Percent",
                },
                "TargetValue": 70,
            },
        },
    )


# --- load balancer ---------------------------------------------------------------------------


def test_internal_alb_with_http_listener_logs_and_readiness_health_check(
    templates: dict[str, Template],
) -> None:
    template = templates["mixed"]
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internal",
            "LoadBalancerAttributes": Match.array_with(
                [
                    {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
                    {"Key": "access_logs.s3.enabled", "Value": "true"},
                    {"Key": "access_logs.s3.prefix", "Value": "fleet-alb"},
                ]
            ),
        },
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener", {"Port": 80, "Protocol": "HTTP"}
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Port": 8080,
            "Protocol": "HTTP",
            "TargetType": "instance",
            "HealthCheckPath": "/v2/health/ready",
            "Matcher": {"HttpCode": "200"},
            "TargetGroupAttributes": Match.array_with(
                [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]
            ),
        },
    )
    # Env-agnostic: the log writer is chosen per region at deploy time.
    conditions = template.to_json()["Conditions"]
    assert [c for c in conditions if c.startswith("FleetLoadBalancerRegionHasElbAccount")]
    assert "Inf3kitElbLogAccounts" in template.to_json()["Mappings"]
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "s3:PutObject",
                                "Principal": Match.object_like(
                                    {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
                                ),
                            }
                        )
                    ]
                )
            }
        },
    )


def test_deregistration_delay_matches_the_drain(templates: dict[str, Template]) -> None:
    templates["warm"].has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "TargetGroupAttributes": Match.array_with(
                [{"Key": "deregistration_delay.timeout_seconds", "Value": "60"}]
            )
        },
    )
    # A concrete region uses the region's ELB account, through CDK's own log_access_logs.
    templates["warm"].has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {
                                    "AWS": {
                                        "Fn::Join": [
                                            "",
                                            [
                                                "arn:",
                                                {"Ref": "AWS::Partition"},
                                                ":iam::127311923021:root",
                                            ],
                                        ]
                                    }
                                }
                            }
                        )
                    ]
                )
            }
        },
    )


def test_security_groups_allow_only_alb_to_runtime_port(templates: dict[str, Template]) -> None:
    template = templates["mixed"]
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": "inf3kit fleet load balancer: listener in, runtime port out",
            "SecurityGroupIngress": [
                {
                    "CidrIp": {"Fn::GetAtt": [Match.string_like_regexp("^Vpc"), "CidrBlock"]},
                    "Description": "clients to the fleet listener",
                    "FromPort": 80,
                    "ToPort": 80,
                    "IpProtocol": "tcp",
                }
            ],
        },
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "IpProtocol": "tcp",
            "FromPort": 8080,
            "ToPort": 8080,
            "GroupId": {
                "Fn::GetAtt": [Match.string_like_regexp("^FleetInstanceSecurityGroup"), "GroupId"]
            },
            "SourceSecurityGroupId": {
                "Fn::GetAtt": [
                    Match.string_like_regexp("^FleetLoadBalancerSecurityGroup"),
                    "GroupId",
                ]
            },
        },
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupEgress",
        {"FromPort": 8080, "ToPort": 8080, "DestinationSecurityGroupId": Match.any_value()},
    )
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 1)
    for name in ("mixed", "warm", "spot", "only_inf3"):
        for sg in templates[name].find_resources("AWS::EC2::SecurityGroup").values():
            for rule in sg["Properties"].get("SecurityGroupIngress", []):
                assert rule.get("CidrIp") != "0.0.0.0/0", (name, rule)


def test_public_alb_serves_https_and_only_then_opens_to_the_internet(
    templates: dict[str, Template],
) -> None:
    template = templates["public"]
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"}
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 443,
            "Protocol": "HTTPS",
            "Certificates": [{"CertificateArn": CERT}],
            "SslPolicy": Match.string_like_regexp("TLS"),
        },
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                Match.object_like({"CidrIp": "0.0.0.0/0", "FromPort": 443, "ToPort": 443})
            ]
        },
    )


# --- catalog warnings and cfn-lint waivers ---------------------------------------------------


def test_provisional_type_warns_and_waives_cfn_lint_instance_type_check(
    stacks: dict[str, cdk.Stack], templates: dict[str, Template]
) -> None:
    Annotations.from_stack(stacks["mixed"]).has_warning(
        "/Mixed/Fleet",
        Match.string_like_regexp(f"inf3.xlarge is provisional.*{PROVISIONAL_WARNING_ID}"),
    )
    templates["mixed"].has_resource(
        "AWS::AutoScaling::AutoScalingGroup",
        {"Metadata": {"cfn-lint": {"config": {"ignore_checks": ["E3628"]}}}},
    )
    templates["warm"].has_resource("AWS::EC2::LaunchTemplate", {"Metadata": Match.absent()})
    assert not Annotations.from_stack(stacks["mixed"]).find_warning(
        "*", Match.string_like_regexp(NO_FALLBACK_WARNING_ID)
    )


def test_inf3_beside_a_known_family_installs_its_release_with_a_warning(
    stacks: dict[str, cdk.Stack],
) -> None:
    Annotations.from_stack(stacks["mixed"]).has_warning(
        "/Mixed/Fleet",
        Match.string_like_regexp(
            r"^Neuron 2\.27\.1 lists inf2, trn1, trn2, not inf3: its packages are installed on "
            r"inf3 unverified \(provisional: .*\[ack: inf3kit:neuronRelease\]$"
        ),
    )


def test_fails_when_a_fleet_of_only_inf3_names_no_neuron_release() -> None:
    stack, vpc, bucket = _stack(cdk.App(), "NoRelease")
    with pytest.raises(ValueError) as info:
        _fleet(stack, vpc, bucket, instance_types=["inf3.xlarge"])
    assert str(info.value).startswith(
        "NeuronFleet Fleet: 1 problem\n  - no Neuron release lists inf3 yet, and inf3kit does "
        "not guess which packages drive it. Fix: set neuron_sdk (spec: fleet.ami.neuron_sdk; "
        "NeuronFleet: neuron_sdk=) with the release to install (known: 2.21.0, "
    )


def test_fails_when_the_fleet_names_a_release_the_matrix_does_not_list() -> None:
    stack, vpc, bucket = _stack(cdk.App(), "Unlisted")
    with pytest.raises(ValueError) as info:
        _fleet(stack, vpc, bucket, instance_types=["trn2.48xlarge"], neuron_sdk="2.20.0")
    assert str(info.value).startswith(
        "NeuronFleet Fleet: 1 problem\n  - Neuron release '2.20.0' is not in the compatibility "
        "matrix (known: 2.21.0, "
    )


def test_provisional_type_without_fallback_gets_a_warning(stacks: dict[str, cdk.Stack]) -> None:
    Annotations.from_stack(stacks["only_inf3"]).has_warning(
        "/OnlyInf3/Fleet",
        "instance_types inf3.xlarge are all provisional and the fleet has no generally available "
        "fallback, so it cannot launch when that capacity is short. Fix: add a GA type after "
        "them, e.g. 'inf2.xlarge' [ack: inf3kit:fleetWithoutFallback]",
    )


def test_metrics_and_attributes(stacks: dict[str, cdk.Stack]) -> None:
    fleet = stacks["mixed"].node.find_child("Fleet")
    assert isinstance(fleet, NeuronFleet)
    metric = fleet.metric_neuroncore_utilization()
    assert (metric.namespace, metric.metric_name) == ("Inf3kit/Neuron", "NeuronCoreUtilization")
    assert fleet.metric_request_count_per_target().metric_name == "RequestCountPerTarget"
    assert fleet.metric_healthy_hosts().metric_name == "HealthyHostCount"
    assert fleet.connections.security_groups == [fleet.frontend.security_group]
    assert fleet.instance_types == ("inf3.xlarge", "inf2.xlarge")
    assert fleet.warm_pool is None and fleet.group and fleet.role and fleet.target_group


def test_runtime_settings_and_extra_environment_reach_the_server() -> None:
    stack, vpc, bucket = _stack(cdk.App(), "Tuned")
    _fleet(
        stack,
        vpc,
        bucket,
        runtime=RuntimeSettings(
            max_batch_size=4, queue_size=64, request_timeout=cdk.Duration.seconds(2)
        ),
        extra_environment={"NEURON_RT_LOG_LEVEL": "WARN"},
    )
    (resource,) = Template.from_stack(stack).find_resources("AWS::EC2::LaunchTemplate").values()
    parts = resource["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "<ref>" for p in parts)
    assert (
        "--env INF3KIT_GRACE_SECONDS=30 --env INF3KIT_MAX_BATCH_SIZE=4 --env INF3KIT_QUEUE_SIZE=64 "
        "--env INF3KIT_REQUEST_TIMEOUT_MS=2000 --env NEURON_RT_LOG_LEVEL=WARN"
    ) in text
    assert "INF3KIT_MAX_DELAY_MS" not in text  # unset: the runtime's own default


# --- validation ------------------------------------------------------------------------------


def _fails(**props: object) -> str:
    app = cdk.App()
    stack, vpc, bucket = _stack(app, "Bad")
    with pytest.raises(ValueError) as info:
        _fleet(stack, vpc, bucket, **props)
    return str(info.value)


def test_fails_when_a_sagemaker_type_is_in_a_fleet() -> None:
    assert _fails(instance_types=["ml.inf2.xlarge"]) == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - instance_types: 'ml.inf2.xlarge' is a SageMaker type; fleets take "
        "EC2 types. Fix: use 'inf2.xlarge'"
    )


def test_fails_when_min_is_greater_than_max() -> None:
    assert _fails(min_capacity=5, max_capacity=2) == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - min_capacity (5) is greater than max_capacity (2). "
        "Fix: set min_capacity <= max_capacity, e.g. min_capacity 2 or max_capacity 5"
    )


def test_fails_when_warm_pool_meets_mixed_instances_and_spot() -> None:
    assert _fails(
        instance_types=["inf2.xlarge", "inf2.8xlarge"], spot_percent=50, warm_pool=WarmPool()
    ) == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - warm pool: cannot be combined with 2 instance types (a mixed instances policy) and "
        "spot_percent 50; AWS refuses a warm pool on such a group. Fix: drop the warm pool, or "
        "keep a single instance type with spot_percent 0"
    )


def test_fails_when_warm_pool_meets_spot() -> None:
    assert _fails(spot_percent=20, warm_pool=WarmPool()) == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - warm pool: cannot be combined with spot_percent 20; AWS refuses a warm pool on such "
        "a group. Fix: drop the warm pool, or keep a single instance type with spot_percent 0"
    )


def test_fails_when_warm_pool_would_hibernate_neuron_instances() -> None:
    assert _fails(warm_pool=WarmPool(state="hibernated")) == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - warm pool: state 'hibernated' needs an instance family that hibernates, and no "
        "Inferentia or Trainium family does (EC2 hibernation prerequisites). Fix: use state "
        "'stopped' (pay for volumes only) or 'running'"
    )


def test_fails_when_the_fleet_family_is_inf1() -> None:
    assert _fails(instance_types=["inf1.xlarge"]) == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - instance_types: inf1.xlarge: the Neuron DLAMIs no longer support Inf1, and an "
        "inf3kit fleet installs torch-neuronx (Neuron 2.x), which cannot drive Inferentia1 "
        "(Neuron docs, Inf1 support matrix and DLAMI release notes). Fix: use a family a fleet "
        "runs on (inf2, inf3, trn1, trn2, trn3), or serve inf1 on a SageMaker endpoint "
        "(images: pytorch-inference-neuron)"
    )


def test_fails_when_public_without_certificate() -> None:
    assert _fails(public=True) == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - public: a public load balancer without a certificate would serve plain HTTP to the "
        "internet. Fix: give a certificate (an ACM certificate ARN), or keep the load balancer "
        "internal"
    )


def test_fails_when_types_are_unknown_gpu_or_repeated_and_lists_every_problem() -> None:
    assert _fails(instance_types=["inf2.xlarg", "g5.xlarge", "inf2.xlarge", "inf2.xlarge"]) == (
        "NeuronFleet Fleet: 3 problems\n"
        "  - instance_types: unknown instance type 'inf2.xlarg'; did you mean "
        "'inf2.xlarge' or 'inf2.8xlarge' or 'inf2.48xlarge'? Fix: use a type listed by "
        "`inf3kit catalog`, or add it in a catalog override file\n"
        "  - instance_types: 'g5.xlarge' is a GPU type (nvidia-a10g), listed only as a cost "
        "baseline; inf3kit deploys to Neuron types. Fix: use an inf*/trn* type, e.g. "
        "'inf2.xlarge'\n"
        "  - instance_types: instance types 'inf2.xlarge' listed more than once. "
        "Fix: list each type once, in order of preference"
    )


def test_fails_when_instance_types_is_empty_or_a_string() -> None:
    assert _fails(instance_types=[]) == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - instance_types is empty. Fix: list at least one EC2 Neuron type, "
        "e.g. ['inf2.xlarge']"
    )
    assert _fails(instance_types="inf2.xlarge") == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - instance_types must be a list, got the string 'inf2.xlarge'. "
        "Fix: instance_types=['inf2.xlarge']"
    )


def test_fails_when_desired_is_outside_the_range() -> None:
    assert _fails(min_capacity=1, max_capacity=3, desired_capacity=4) == (
        "NeuronFleet Fleet: 1 problem\n"
        "  - desired_capacity (4) is outside min_capacity..max_capacity (1..3). "
        "Fix: choose a count within the range, or leave desired_capacity unset"
    )


def test_fails_when_port_startup_drain_and_targets_are_out_of_range() -> None:
    assert _fails(
        port=80,
        startup_timeout=cdk.Duration.hours(2),
        drain=cdk.Duration.seconds(4000),
        neuroncore_utilization_percent=99,
        requests_per_instance=0,
        imds_hop_limit=3,
    ) == (
        "NeuronFleet Fleet: 6 problems\n"
        "  - port 80 is not allowed; the runtime runs unprivileged on 1024..65535. "
        "Fix: use e.g. 8080\n"
        "  - drain 4000 s must be 0..3600 "
        "seconds (the target group's deregistration delay limit). Fix: e.g. "
        "Duration.seconds(30)\n"
        "  - startup_timeout 7200 s must be 1..60 minutes (a rolling update "
        "pauses at most one hour per batch). Fix: e.g. Duration.minutes(20)\n"
        "  - imds_hop_limit 3 is "
        "not allowed. Fix: use 1 (host only) or 2 (containers on the host need instance "
        "credentials)\n"
        "  - requests_per_instance 0 must be >= 1. Fix: e.g. 400, or None to turn "
        "request scaling off\n"
        "  - neuroncore_utilization_percent 99 must be 10..95. Fix: e.g. 70, or "
        "None to turn NeuronCore scaling off"
    )


def test_fails_when_env_is_not_a_runtime_setting() -> None:
    assert _fails(
        extra_environment={"PATH": "/x", "INF3KIT_QUEUE_SIZE": "8"},
        runtime=RuntimeSettings(queue_size=0, max_delay=cdk.Duration.millis(1.5)),
    ) == (
        "NeuronFleet Fleet: 4 problems\n"
        "  - runtime.queue_size: got 0, must be >= 1. Fix: use 1 or more, or leave it unset\n"
        "  - runtime.max_delay: got 1.5 ms, must be a whole number of milliseconds >= 0. "
        "Fix: use Duration.millis(n) with a whole n >= 0, or leave it unset\n"
        "  - extra_environment keys 'PATH' are "
        "not runtime settings. Fix: use INF3KIT_* or NEURON_* variables (docs/runtime.md)\n"
        "  - extra_environment keys 'INF3KIT_QUEUE_SIZE' are typed props. "
        "Fix: set them with runtime=RuntimeSettings(...)"
    )


def test_the_default_startup_timeout_is_the_estimate_for_the_bundle_and_ami() -> None:
    """Install + download + load, not a constant: a baked AMI needs no Neuron install."""
    from inf3kit.constructs import NeuronAmi, NeuronAmiPipeline

    stack, vpc, bucket = _stack(cdk.App(), "Sized")
    small = _fleet(stack, vpc, bucket, bundle_size=cdk.Size.mebibytes(1))
    assert small.startup_estimate.install == 60 + 3 * 180  # torch, torch-neuronx, neuronx-cc
    assert small.startup_timeout.to_minutes() == small.startup_estimate.minutes == 24
    stack, vpc, bucket = _stack(cdk.App(), "Baked")
    pipeline = NeuronAmiPipeline(stack, "Ami", instance_types=["inf2.xlarge"])
    baked = _fleet(
        stack,
        vpc,
        bucket,
        bundle_size=cdk.Size.mebibytes(1),
        machine_image=NeuronAmi.from_pipeline(pipeline),
    )
    assert baked.startup_estimate.install == 60
    assert baked.startup_timeout.to_minutes() == 10
    given = _fleet(*_stack(cdk.App(), "Given"), startup_timeout=cdk.Duration.minutes(45))
    assert given.startup_timeout.to_minutes() == 45


def test_fails_when_the_release_has_no_packages_for_the_dlamis_python() -> None:
    """Neuron 2.26.1 publishes for Python 3.10 and 3.11; the Ubuntu 24.04 DLAMI's is 3.12."""
    stack, vpc, bucket = _stack(cdk.App(), "OldPython")
    with pytest.raises(ValueError) as info:
        _fleet(stack, vpc, bucket, neuron_sdk="2.26.1")
    assert str(info.value) == (
        "NeuronFleet Fleet: 1 problem\n  - Neuron 2.26.1 publishes its packages for Python "
        "3.10, 3.11, but the Neuron DLAMI's python3 is 3.12: pip would find no torch-neuronx for "
        "it and every boot would fail. Fix: pin a release for Python 3.12 (e.g. '2.31.1'), or "
        "build on an AMI of your own (spec: fleet.ami.source id; NeuronFleet: machine_image; "
        "NeuronAmiPipeline: parent_image)"
    )


def test_an_ami_of_your_own_may_pin_a_release_for_another_python() -> None:
    stack, vpc, bucket = _stack(cdk.App(), "OwnAmi")
    fleet = _fleet(
        stack, vpc, bucket, neuron_sdk="2.26.1", machine_image=FixedImage("ami-0123456789abcdef0")
    )
    assert fleet.neuron_sdk == "2.26.1"
