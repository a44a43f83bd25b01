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
   cannot resolve its image. The catalog's DLAMI parameters (and any other DLAMI `image_id`
   parameter asked for, such as the multi-framework DLAMI of an LLM fleet) are served, each
   naming an AMI moto already has; no instance boots in the emulator, so which image it is
   does not matter.
7. moto's ELBv2 answers `Fn::GetAtt` for a load balancer's DNS name only: `LoadBalancerFullName`
   and `SecurityGroups` raise, and a target group answers nothing, so any alarm or dashboard on
   them (CloudWatch dimensions use the full names) breaks the stack's outputs. The attributes
   are derived from the ARNs, as AWS does.
8. moto's CloudFormation keeps a change set after it is executed, answers DescribeChangeSet for
   an unknown change set with a ValidationError ("Stack with id ... does not exist"), and fails
   DeleteChangeSet for one. AWS removes a stack's change sets once one is executed and answers
   ChangeSetNotFound (404), which is what the CDK CLI waits for after deleting the previous
   `cdk-deploy-change-set`: without this every second deploy of a stack (an update) fails.
9. moto answers a parameter's "previous value" (`UsePreviousValue`, which the CDK CLI sends on
   updates) with its resolved value, so an `AWS::SSM::Parameter::Value` parameter (the CDK's
   bootstrap version, a fleet's DLAMI) is looked up again by its own value, an AMI id, and the
   update crashes. AWS keeps the parameter's path as its value and resolves it on each update.
10. moto's CloudFormation updates only the resources whose own template text changed. When an
   update replaces a resource (a SageMaker model with a new bundle gets a new name), AWS also
   updates every resource that references it (`Ref`, `Fn::GetAtt`, `Fn::Sub`), so the endpoint
   config moves to the new model; moto left it pointing at the deleted one. Those dependents
   are updated too, after what they reference.
11. moto's CloudFormation reads a listener's forward action only as one `TargetGroupArn` and
   fails on `ForwardConfig` (a forward to several weighted target groups, as an LLM fleet's
   listener spreads requests over one target group per vLLM server), though its API takes
   both. The CloudFormation path passes `ForwardConfig` through as the API does.
"""

from __future__ import annotations

import contextlib
import graphlib
import json
import re
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


def change_sets_as_aws() -> None:
    from moto.cloudformation.exceptions import CloudFormationError
    from moto.cloudformation.models import CloudFormationBackend

    class NotFound(CloudFormationError):
        code = "ChangeSetNotFound"

    def find(self: Any, name_or_arn: str) -> Any:
        found = self.change_sets.get(name_or_arn) or next(
            (c for c in self.change_sets.values() if c.change_set_name == name_or_arn), None
        )
        if found is None:
            raise NotFound(f"ChangeSet [{name_or_arn}] does not exist")
        return found

    original_execute: Any = CloudFormationBackend.execute_change_set

    def describe_change_set(self: Any, change_set_name: str) -> Any:
        return find(self, change_set_name)

    def delete_change_set(self: Any, change_set_name: str) -> None:
        with contextlib.suppress(NotFound):
            del self.change_sets[find(self, change_set_name).change_set_id]

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        stack_id = find(self, change_set_name).stack_id
        original_execute(self, change_set_name, stack_name)
        for change_set_id in [i for i, c in self.change_sets.items() if c.stack_id == stack_id]:
            del self.change_sets[change_set_id]

    backend: Any = CloudFormationBackend
    backend.describe_change_set = describe_change_set
    backend.delete_change_set = delete_change_set
    backend.execute_change_set = execute_change_set


def previous_ssm_parameter_values_unresolved() -> None:
    from moto.cloudformation.models import Stack

    def stack_parameters(self: Any) -> dict[str, Any]:
        resources = self.resource_map
        slots = resources._template.get("Parameters", {})
        values = dict(resources.resolved_parameters)
        for key, slot in slots.items():
            if str(slot.get("Type", "")).startswith("AWS::SSM::Parameter::"):
                values[key] = resources.input_parameters.get(key, slot.get("Default"))
        return values

    stack: Any = Stack
    stack.stack_parameters = property(stack_parameters)


def _references(node: Any) -> set[str]:
    """Logical ids a template fragment points at through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                found |= _references(value[1:] if isinstance(value, list) else [])
            else:
                found |= _references(value)
    return found


def updates_reach_dependents() -> None:
    from moto.cloudformation.parsing import ResourceMap, resource_class_from_type

    original: Any = ResourceMap.build_resource_diff

    def updatable(resource: dict[str, Any]) -> bool:
        model = resource_class_from_type(resource.get("Type", ""))
        update = getattr(model, "update_from_cloudformation_json", None)
        return update is not None and not hasattr(update, "__isabstractmethod__")

    def build_resource_diff(self: Any, template: dict[str, Any], *args: Any) -> dict[str, Any]:
        actions = original(self, template, *args)
        new = template["Resources"]
        refs = {name: _references(body) & set(new) for name, body in new.items()}
        changed = set(actions["Modify"]) | set(actions["Add"])
        grew = True
        while grew:
            reached = {
                name
                for name in set(new) - changed
                if name in self._resource_json_map and refs[name] & changed and updatable(new[name])
            }
            changed |= reached
            grew = bool(reached)
        modify = changed - set(actions["Add"])
        # Dependencies first: CloudFormation templates have no reference cycles.
        graph = {name: refs[name] & modify for name in modify}
        ordered = list(graphlib.TopologicalSorter(graph).static_order())
        actions["Modify"] = ordered
        return actions

    resource_map: Any = ResourceMap
    resource_map.build_resource_diff = build_resource_diff


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
        key = str(key or "")
        if not key.startswith("/aws/service/neuron/"):
            return
        # The catalog's parameters, and any other DLAMI image id asked for (an LLM fleet reads
        # the multi-framework DLAMI's).
        wanted = [*names, key] if key.endswith("/image_id") else names
        missing = [n for n in dict.fromkeys(wanted) if not self.get(n)]
        if not missing:
            return
        images = ec2_backends[self.account_id][self.region_name].describe_images()
        for name in missing:
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


def listener_forward_config() -> None:
    from moto.elbv2.models import ELBv2Backend

    original: Any = ELBv2Backend.convert_and_validate_properties

    def convert(self: Any, properties: dict[str, Any]) -> list[dict[str, Any]]:
        actions = properties["DefaultActions"]
        weighted = {
            i: a
            for i, a in enumerate(actions)
            if a.get("Type") == "forward" and "TargetGroupArn" not in a and "ForwardConfig" in a
        }
        rest = original(
            self,
            {
                **properties,
                "DefaultActions": [a for i, a in enumerate(actions) if i not in weighted],
            },
        )
        converted = iter(rest)
        return [weighted[i] if i in weighted else next(converted) for i in range(len(actions))]

    ELBv2Backend.convert_and_validate_properties = convert  # type: ignore[method-assign]


def apply_all() -> None:
    accept_catalog_neuron_types()
    kms_keys_from_cloudformation()
    accept_flow_log_prefixes()
    outputs_after_change_sets()
    change_sets_as_aws()
    previous_ssm_parameter_values_unresolved()
    updates_reach_dependents()
    route_tables_deletable()
    serve_neuron_dlami_parameters()
    elbv2_attributes()
    listener_forward_config()
