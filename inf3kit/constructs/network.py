"""ServiceNetwork: a VPC for Neuron services with private subnets, flow logs and an S3 endpoint."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from inf3kit.constructs.validation import raise_if_problems


class ServiceNetwork(Construct):
    """A VPC whose instances and endpoints sit in private subnets across `max_azs` zones.

    Flow logs go to the given log bucket; S3 traffic (bundle downloads, which can be many GB)
    takes a gateway endpoint instead of the NAT gateway, which is both cheaper and faster.

    The VPC's default security group keeps its default rules unless
    `restrict_default_security_group` is set: CDK removes them with a Lambda-backed custom
    resource, which the local AWS emulator (no Docker) cannot run, and no inf3kit resource uses
    the default group (each has its own security group).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        flow_log_bucket: s3.IBucket,
        max_azs: int = 2,
        nat_gateways: int = 1,
        restrict_default_security_group: bool = False,
    ) -> None:
        """Create the VPC.

        :param flow_log_bucket: receives VPC flow logs (all traffic) under `vpc-flow-logs/`.
        :param max_azs: zones to spread over. Default: 2.
        :param nat_gateways: egress gateways for package installs. Default: 1 (one per zone
            costs more; set it to `max_azs` for zone-independent egress).
        :param restrict_default_security_group: remove all rules from the VPC's default security
            group. Default: False, the default group keeps its default rules (members may talk to
            each other; all egress), because CDK does this with a Lambda-backed custom resource
            that the local AWS emulator cannot run. No inf3kit resource is in the default group;
            turn it on when you deploy only to AWS.
        """
        super().__init__(scope, id)
        raise_if_problems("ServiceNetwork", self, _validate(max_azs, nat_gateways))
        self.vpc = ec2.Vpc(
            self,
            "Resource",
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            # Off by default: the restriction is a Lambda-backed custom resource, which the local
            # AWS emulator (no Docker) cannot run. Every inf3kit resource has its own group.
            restrict_default_security_group=restrict_default_security_group,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, "vpc-flow-logs/"),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )


def _validate(max_azs: int, nat_gateways: int) -> list[str]:
    """Every problem with the props, so one synthesis reports them all."""
    problems = []
    if not 1 <= max_azs <= 6:
        problems.append(f"max_azs must be 1..6, got {max_azs}")
    elif not 0 <= nat_gateways <= max_azs:
        problems.append(
            f"nat_gateways: got {nat_gateways}, must be 0..{max_azs} (max_azs; at most one per "
            "zone). Fix: use 1 for shared egress, max_azs for one per zone, or 0 for none"
        )
    return problems
