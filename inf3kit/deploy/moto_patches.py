"""The one place where inf3kit adjusts the local AWS emulator (moto) to behave like AWS.

Each patch names the gap it closes; nothing else in moto is changed, and nothing here ships in
what inf3kit deploys to AWS.

1. moto's SageMaker validates endpoint-config instance types against a list that lags AWS: it
   has `ml.inf1.*` but no `ml.inf2.*`, `ml.trn1.*` or the provisional `ml.inf3.*`. The launcher
   accepts every SageMaker Neuron type of inf3kit's catalog and leaves other types to moto.
2. moto's CloudFormation passes an `AWS::KMS::Key`'s `Tags` (`Key`/`Value`, the CloudFormation
   shape) to its KMS tagger, which expects the API shape (`TagKey`/`TagValue`) and fails with
   KeyError, so any tagged stack with a KMS key fails; and it stores the `KeyPolicy` object
   where the API stores a JSON string, so DescribeKey fails afterwards. Both are converted.
3. moto's EC2 checks that an S3 flow-log destination bucket exists by looking up everything after
   `arn:aws:s3:::` as the bucket name, so a destination with a key prefix
   (`arn:aws:s3:::bucket/vpc-flow-logs/`, which AWS accepts) is refused and its CloudFormation
   handler crashes. The check is given the bare bucket; the flow log keeps the full destination.
4. moto's CloudFormation builds a stack's outputs only for CreateStack/UpdateStack, not when a
   change set is executed, which is how the CDK CLI deploys: every output would read as empty.
   The outputs are rebuilt after a change set is applied.
5. moto's CloudFormation cannot delete an `AWS::EC2::RouteTable` (no delete handler), so the
   VPC that holds it refuses deletion and `cdk destroy` fails. CloudFormation deletes a route
   table after its subnet associations; the handler does the same.
6. moto serves some public SSM parameters (Amazon Linux AMIs) but not the Neuron DLAMI ones
   (`/aws/service/neuron/dlami/...`) that fleets read their AMI from, so a fleet template
   cannot resolve its image. The catalog's DLAMI parameters are served, each naming an AMI
   moto already has; no instance boots in the emulator, so which image it is does not matter.
7. moto's ELBv2 answers `Fn::GetAtt` for a load balancer's DNS name only: `LoadBalancerFullName`
   and `SecurityGroups` raise, and a target group answers nothing, so any alarm or dashboard on
   them (CloudWatch dimensions use the full names) breaks the stack's outputs. The attributes
   are derived from the ARNs, as AWS does.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from inf3kit.catalog import load_catalog


def accept_catalog_neuron_types() -> None:
    from moto.sagemaker import models

    neuron_types = {t.name for t in load_catalog().types(platform="sagemaker") if t.is_neuron}
    original: Any = models.FakeEndpointConfig.validate_instance_type

    def validate_instance_type(self: Any, instance_type: str) -> None:
        if instance_type not in neuron_types:
            original(self, instance_type)

    models.FakeEndpointConfig.validate_instance_type = validate_instance_type  # type: ignore[method-assign]


def kms_keys_from_cloudformation() -> None:
    from moto.kms import models

    original: Any = models.Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kw: Any
    ) -> Any:
        properties = cloudformation_json.get("Properties", {})
        properties["Tags"] = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
            for t in properties.get("Tags", [])
        ]
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        return original(cls, resource_name, cloudformation_json, *args, **kw)

    models.Key.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]


def accept_flow_log_prefixes() -> None:
    from moto.ec2.models.flow_logs import FlowLogsBackend

    original: Any = FlowLogsBackend.create_flow_logs

    def create_flow_logs(self: Any, *args: Any) -> Any:
        destination_type, destination = args[4], args[5]
        bucket, slash, _prefix = (destination or "").partition("/")
        if destination_type != "s3" or not slash:
            return original(self, *args)
        flow_logs, unsuccessful = original(self, *args[:5], bucket, *args[6:])
        for flow_log in flow_logs:
            flow_log.log_destination = destination
        return flow_logs, unsuccessful

    FlowLogsBackend.create_flow_logs = create_flow_logs  # type: ignore[method-assign,assignment]


def outputs_after_change_sets() -> None:
    from moto.cloudformation.models import ChangeSet

    original: Any = ChangeSet.apply

    def apply(self: Any) -> None:
        original(self)
        self.stack.template = self.template
        self.stack._parse_template()
        self.stack.output_map = self.stack._create_output_map()

    ChangeSet.apply = apply  # type: ignore[method-assign]


def route_tables_deletable() -> None:
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.route_tables import RouteTable

    def delete(self: Any, account_id: str, region_name: str) -> None:
        self._associations.clear()
        ec2_backends[account_id][region_name].delete_route_table(self.id)

    RouteTable.delete = delete  # type: ignore[attr-defined]


def serve_neuron_dlami_parameters() -> None:
    from moto.core.utils import utcnow
    from moto.ec2 import ec2_backends
    from moto.ssm.models import Parameter, ParameterDict

    from inf3kit.catalog import load_compatibility

    families = load_compatibility().data.families.values()
    names = sorted({f.dlami_ssm_parameter for f in families if f.dlami_ssm_parameter})
    original: Any = ParameterDict._check_loading_status

    def check_loading_status(self: Any, key: str) -> None:
        original(self, key)
        if not str(key or "").startswith("/aws/service/neuron/") or self.get(names[0]):
            return
        images = ec2_backends[self.account_id][self.region_name].describe_images()
        for name in names:
            defaultdict.__getitem__(self, name).append(
                Parameter(  # type: ignore[abstract]
                    account_id=self.account_id,
                    name=name,
                    value=images[0].id,
                    parameter_type="String",
                    description="inf3kit emulator stand-in for the Neuron DLAMI",
                    allowed_pattern=None,
                    keyid=None,
                    last_modified_date=utcnow(),
                    version=1,
                    data_type="aws:ec2:image",
                )
            )

    ParameterDict._check_loading_status = check_loading_status  # type: ignore[method-assign]


def elbv2_attributes() -> None:
    from moto.elbv2.models import FakeLoadBalancer, FakeTargetGroup

    def full_name(arn: str, marker: str) -> str:
        return arn.split(marker, 1)[1]

    original: Any = FakeLoadBalancer.get_cfn_attribute

    def balancer_attribute(self: Any, name: str) -> Any:
        if name == "LoadBalancerFullName":
            return full_name(self.arn, ":loadbalancer/")
        if name == "SecurityGroups":
            return self.security_groups
        return original(self, name)

    def group_attribute(self: Any, name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        attributes = {
            "TargetGroupFullName": lambda: "targetgroup/" + full_name(self.arn, ":targetgroup/"),
            "TargetGroupName": lambda: self.name,
            "TargetGroupArn": lambda: self.arn,
            "LoadBalancerArns": lambda: list(self.load_balancer_arns),
        }
        if name not in attributes:
            raise UnformattedGetAttTemplateException()
        return attributes[name]()

    FakeLoadBalancer.get_cfn_attribute = balancer_attribute  # type: ignore[method-assign,assignment]
    group: Any = FakeTargetGroup
    group.get_cfn_attribute = group_attribute
    group.has_cfn_attr = classmethod(
        lambda cls, attr: (
            attr in ("TargetGroupFullName", "TargetGroupName", "TargetGroupArn", "LoadBalancerArns")
        )
    )


def apply_all() -> None:
    accept_catalog_neuron_types()
    kms_keys_from_cloudformation()
    accept_flow_log_prefixes()
    outputs_after_change_sets()
    route_tables_deletable()
    serve_neuron_dlami_parameters()
    elbv2_attributes()
