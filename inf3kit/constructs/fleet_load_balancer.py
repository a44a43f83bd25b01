"""The fleet's Application Load Balancer: listener, target group, security groups, access logs."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, CfnCondition, CfnMapping, Duration, Fn, Stack, Token, region_info
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from inf3kit.constructs.buckets import log_bucket
from inf3kit.constructs.nag import skip_checkov

READINESS_PATH = "/v2/health/ready"
LOG_PREFIX = "fleet-alb"


class FleetLoadBalancer(Construct):
    """An ALB in front of the servers' ports, reachable only from `allow_from` on its listener.

    Each target group checks a server's health path, so an instance that is still loading its
    model (or draining after SIGTERM) gets no traffic, and its deregistration delay equals the
    server's drain period. With `servers` above 1 (several servers per instance on consecutive
    ports, as an LLM fleet runs one engine per tensor-parallel group) there is one target group
    per port and the listener spreads requests evenly over them: an Auto Scaling group
    registers each instance once per target group, on that group's port.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        port: int,
        drain: Duration,
        public: bool,
        certificate: acm.ICertificate | None,
        allow_from: Sequence[ec2.IPeer] | None,
        access_logs_bucket: s3.IBucket | None,
        deletion_protection: bool,
        servers: int = 1,
        health_path: str = READINESS_PATH,
        idle_timeout: Duration | None = None,
        least_outstanding_requests: bool = False,
    ) -> None:
        """:param servers: servers per instance, on ports `port`..`port + servers - 1`; at most
            5 (an ALB forward action takes at most 5 target groups).
        :param idle_timeout: the load balancer's idle timeout. Default: ELB's, 60 seconds.
        :param least_outstanding_requests: route to the target with the fewest requests in
            flight instead of round robin (long, uneven requests such as LLM generations).
        """
        super().__init__(scope, id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="inf3kit fleet load balancer: listener in, runtime port out",
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "Resource",
            vpc=vpc,
            internet_facing=public,
            security_group=self.security_group,
            vpc_subnets=ec2.SubnetSelection(
                subnet_type=ec2.SubnetType.PUBLIC if public else ec2.SubnetType.PRIVATE_WITH_EGRESS
            ),
            drop_invalid_header_fields=True,
            deletion_protection=deletion_protection,
            idle_timeout=idle_timeout,
        )
        cfn_lb = self.load_balancer.node.default_child
        if not deletion_protection:
            skip_checkov(
                cfn_lb,  # type: ignore[arg-type]
                "CKV_AWS_150",
                "Deletion protection is the NeuronFleet prop deletion_protection (default off so "
                "that deleting the stack deletes the fleet); production stacks turn it on.",
            )
        # ALB access logs only support SSE-S3, so the bucket cannot use the service's KMS key.
        self.access_logs_bucket = access_logs_bucket or log_bucket(
            self,
            "AccessLogs",
            why_unlogged="This bucket only receives load balancer access logs; logging its own S3 "
            "access would need yet another bucket. Pass access_logs_bucket to use a logged bucket.",
        )
        self._log_access(self.access_logs_bucket)

        self.target_groups: list[elbv2.ApplicationTargetGroup] = [
            elbv2.ApplicationTargetGroup(
                self,
                "Targets" if index == 0 else f"Targets{index}",
                vpc=vpc,
                port=port + index,
                protocol=elbv2.ApplicationProtocol.HTTP,
                target_type=elbv2.TargetType.INSTANCE,
                deregistration_delay=drain,
                load_balancing_algorithm_type=elbv2.TargetGroupLoadBalancingAlgorithmType.LEAST_OUTSTANDING_REQUESTS
                if least_outstanding_requests
                else None,
                health_check=elbv2.HealthCheck(
                    path=health_path,
                    port="traffic-port",
                    healthy_http_codes="200",
                    interval=Duration.seconds(10),
                    timeout=Duration.seconds(5),
                    healthy_threshold_count=2,
                    unhealthy_threshold_count=3,
                ),
            )
            for index in range(servers)
        ]
        self.target_group = self.target_groups[0]
        listener_port = 443 if certificate else 80
        self.listener = self.load_balancer.add_listener(
            "Listener",
            port=listener_port,
            protocol=elbv2.ApplicationProtocol.HTTPS
            if certificate
            else elbv2.ApplicationProtocol.HTTP,
            certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)]
            if certificate
            else None,
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS if certificate else None,
            open=False,
            default_target_groups=[self.target_group] if servers == 1 else None,
            default_action=elbv2.ListenerAction.weighted_forward(
                [elbv2.WeightedTargetGroup(target_group=t, weight=1) for t in self.target_groups]
            )
            if servers > 1
            else None,
        )
        if certificate is None:
            reason = (
                "The listener serves HTTP because no certificate was given; the load balancer "
                "is internal (public without a certificate is refused), so traffic stays in "
                "the VPC. Pass certificate= to serve HTTPS."
            )
            skip_checkov(self.listener.node.default_child, "CKV_AWS_2", reason)  # type: ignore[arg-type]
            skip_checkov(self.listener.node.default_child, "CKV_AWS_103", reason)  # type: ignore[arg-type]
        peers = list(allow_from) if allow_from is not None else None
        if peers is None:
            peers = [ec2.Peer.any_ipv4()] if public else [ec2.Peer.ipv4(vpc.vpc_cidr_block)]
        for peer in peers:
            self.security_group.add_ingress_rule(
                peer, ec2.Port.tcp(listener_port), "clients to the fleet listener"
            )
        self.listener_port = listener_port
        self.url = Fn.join(
            "",
            ["https://" if certificate else "http://", self.load_balancer.load_balancer_dns_name],
        )

    def _log_access(self, bucket: s3.IBucket) -> None:
        """Turn on access logs; env-agnostic stacks pick the log writer per region at deploy."""
        stack = Stack.of(self)
        if not Token.is_unresolved(stack.region):
            self.load_balancer.log_access_logs(bucket, LOG_PREFIX)
            return
        # CDK's log_access_logs needs a concrete region: older regions deliver logs from a
        # regional ELB account, newer ones from a service principal. Grant both, choosing the
        # account with a mapping (regions without one map to this account, which is harmless).
        for key, value in (
            ("access_logs.s3.enabled", "true"),
            ("access_logs.s3.bucket", bucket.bucket_name),
            ("access_logs.s3.prefix", LOG_PREFIX),
        ):
            self.load_balancer.set_attribute(key, value)
        accounts = {r.name: r.elbv2_account or "none" for r in region_info.RegionInfo.regions}
        mapping = stack.node.try_find_child("Inf3kitElbLogAccounts")
        if not isinstance(mapping, CfnMapping):
            mapping = CfnMapping(
                stack,
                "Inf3kitElbLogAccounts",
                mapping={region: {"account": account} for region, account in accounts.items()},
            )
        account_of_region = mapping.find_in_map(Aws.REGION, "account")
        has_account = CfnCondition(
            self,
            "RegionHasElbAccount",
            expression=Fn.condition_not(Fn.condition_equals(account_of_region, "none")),
        )
        writer = Fn.condition_if(
            has_account.logical_id,
            Fn.join("", ["arn:", Aws.PARTITION, ":iam::", account_of_region, ":root"]),
            Fn.join("", ["arn:", Aws.PARTITION, ":iam::", Aws.ACCOUNT_ID, ":root"]),
        ).to_string()
        objects = bucket.arn_for_objects(f"{LOG_PREFIX}/AWSLogs/{Aws.ACCOUNT_ID}/*")
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                principals=[
                    iam.ArnPrincipal(writer),
                    iam.ServicePrincipal("logdelivery.elasticloadbalancing.amazonaws.com"),
                ],
                resources=[objects],
            )
        )
        if bucket.policy is not None:
            self.load_balancer.node.add_dependency(bucket.policy)
