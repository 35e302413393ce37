"""The one provider Lambda per stack that every RestoredBackup in that stack shares."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from aws_cdk import Acknowledgment, ArnFormat, CfnResource, Duration, RemovalPolicy, Stack, Stage, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from cloudhsm_backup_restore_pipeline.contract import (
    ARCHITECTURE,
    DESCRIBE_ACTIONS,
    HANDLER,
    LAMBDA_TIMEOUT_SECONDS,
    LOG_ACTIONS,
    LOG_RETENTION_DAYS,
    MEMORY_MB,
    POLL_PARAMETER_ACTIONS,
    POLL_PERMISSION_ACTIONS,
    POLL_RULE_ACTIONS,
    POLL_RULE_PREFIX,
    RESOURCE_TYPE,
    RESPONSE_PARAMETER_PREFIX,
    RUNTIME,
    VPC_ENI_ACTIONS,
)
from constructs import Construct, IConstruct

from cloudhsm_backup_restore_cdk.bundling import lambda_code

PROVIDER_ID = "CloudHsmBackupRestoreProvider"
"""Construct id of the provider at stack scope: the key of the one-per-stack lookup."""

ENI_ACTIONS = VPC_ENI_ACTIONS

_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


def _placement_key(
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
) -> tuple[object, ...]:
    """What identifies a VPC placement, comparable across RestoredBackups."""
    return (
        vpc.node.path if vpc is not None else None,
        repr(vpc_subnets) if vpc_subnets is not None else None,
        tuple(group.node.path for group in security_groups) if security_groups is not None else None,
    )


def _acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (cdk-nag v3 reads CDK's native Validations acknowledgments)."""
    Validations.of(scope).acknowledge(Acknowledgment(id="AwsSolutions::" + rule, reason=reason))


class RestoreProvider(Construct):
    """Role, log group and Lambda function behind every RestoredBackup of one stack.

    Obtain it with ``RestoreProvider.of(scope)``; each RestoredBackup then adds its own IAM policy
    (``grant_backup``) for just the backup it restores.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.placement_key = _placement_key(vpc, vpc_subnets, security_groups)

        self.log_group = logs.LogGroup(self, "LogGroup", removal_policy=RemovalPolicy.RETAIN)
        """The function's logs; retained on stack deletion so the last Delete stays readable, expiring."""
        cast(logs.CfnLogGroup, self.log_group.node.default_child).retention_in_days = LOG_RETENTION_DAYS

        statements = [
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=list(LOG_ACTIONS),
                resources=[self.log_group.log_group_arn],
            ),
            iam.PolicyStatement(sid="DescribeBackups", actions=list(DESCRIBE_ACTIONS), resources=["*"]),
            iam.PolicyStatement(
                sid="PollingRules",
                actions=list(POLL_RULE_ACTIONS),
                resources=[
                    stack.format_arn(
                        service="events",
                        resource="rule",
                        resource_name=POLL_RULE_PREFIX + "*",
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="PollingResponseUrl",
                actions=list(POLL_PARAMETER_ACTIONS),
                resources=[
                    stack.format_arn(
                        service="ssm",
                        resource="parameter",
                        resource_name=RESPONSE_PARAMETER_PREFIX.strip("/") + "/*",
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                ],
            ),
        ]
        self.role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the {RESOURCE_TYPE} provider",
            inline_policies={"Provider": iam.PolicyDocument(statements=statements)},
        )
        _acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudhsm:DescribeBackups has no resource-level permissions: IAM only accepts Resource '*' for it",
        )
        _acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/{POLL_RULE_PREFIX}*]",
            "crhelper's polling creates EventBridge rules with generated names; every name the provider creates "
            f"starts with {POLL_RULE_PREFIX}, so the wildcard covers only those rules",
        )
        _acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/"
            f"{RESPONSE_PARAMETER_PREFIX.strip('/')}/*]",
            "during a polling hand-off the ResponseURL is kept in an SSM SecureString named after the generated "
            f"rule; every such parameter lives under {RESPONSE_PARAMETER_PREFIX}, so the wildcard covers only those",
        )

        self.function = lambda_.Function(
            self,
            "Function",
            description=f"Provider of {RESOURCE_TYPE}: restores deleted CloudHSM backups",
            runtime=lambda_.Runtime(RUNTIME, lambda_.RuntimeFamily.PYTHON),
            architecture=_ARCHITECTURES[ARCHITECTURE],
            handler=HANDLER,
            code=lambda_code(),
            timeout=Duration.seconds(LAMBDA_TIMEOUT_SECONDS),
            memory_size=MEMORY_MB,
            # The role as an immutable reference: the function's Role GetAtt already orders it after the role,
            # and an L2 role would add a redundant DependsOn (cfn-lint W3005). Grants go to ``self.role``.
            role=iam.Role.from_role_arn(self, "FunctionRole", self.role.role_arn, mutable=False),
            log_group=self.log_group,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
        )

        if vpc is not None:
            self._grant_network_interfaces()

        self.invoke_permission_policy = iam.Policy(
            self,
            "PollingPermissions",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="PollingInvokePermission",
                    actions=list(POLL_PERMISSION_ACTIONS),
                    resources=[self.function.function_arn],
                )
            ],
        )
        """Separate from the role: it names the function, which itself depends on the role."""

    def _grant_network_interfaces(self) -> None:
        """The EC2 permissions Lambda uses for the function's network interfaces, scoped like the template's.

        A policy of its own that the function resource depends on: Lambda checks them when it creates the
        function. Network interfaces in only this account and region, created only in the function's
        own subnets and security groups.
        """
        stack = Stack.of(self)

        def ec2_arn(resource: str, name: str) -> str:
            return stack.format_arn(
                service="ec2", resource=resource, resource_name=name, arn_format=ArnFormat.SLASH_RESOURCE_NAME
            )

        interfaces = ec2_arn("network-interface", "*")
        # Exactly the subnets and security groups the function was given (or CDK chose and created for it).
        placement = cast(
            lambda_.CfnFunction.VpcConfigProperty,
            cast(lambda_.CfnFunction, self.function.node.default_child).vpc_config,
        )
        policy = iam.Policy(
            self,
            "NetworkInterfaces",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="DescribeNetworkInterfaces",
                    actions=[action for action in ENI_ACTIONS if ":Describe" in action],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="CreateNetworkInterfacesInOwnSubnetsAndGroups",
                    actions=["ec2:CreateNetworkInterface"],
                    resources=[
                        interfaces,
                        *(ec2_arn("subnet", subnet_id) for subnet_id in placement.subnet_ids or []),
                        *(ec2_arn("security-group", group_id) for group_id in placement.security_group_ids or []),
                    ],
                ),
                iam.PolicyStatement(
                    sid="ManageNetworkInterfaces",
                    actions=[action for action in ENI_ACTIONS if ":Describe" not in action and ":Create" not in action],
                    resources=[interfaces],
                ),
            ],
        )
        # Only the function resource waits for the policy: its security group is named in the policy.
        cast(CfnResource, self.function.node.default_child).node.add_dependency(policy)
        _acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets have no resource-level permissions: IAM only "
            "accepts Resource '*' for them",
        )
        _acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
            "Lambda creates the VPC function's network interfaces with ids unknown in advance; the wildcard is "
            "limited to network interfaces in this account and region",
        )

    @classmethod
    def of(
        cls,
        scope: Construct,
        *,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> RestoreProvider:
        """The stack's provider, created on first use; every caller in a stack must ask for the same VPC placement."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(PROVIDER_ID)
        if existing is None:
            return cls(stack, PROVIDER_ID, vpc=vpc, vpc_subnets=vpc_subnets, security_groups=security_groups)
        if not isinstance(existing, RestoreProvider):
            raise TypeError(f"Construct id {PROVIDER_ID} at stack {stack.node.path} is taken by another construct")
        if existing.placement_key != _placement_key(vpc, vpc_subnets, security_groups):
            raise ValueError(
                f"vpc, vpc_subnets and security_groups must be the same for every RestoredBackup in stack "
                f"{stack.node.path}: they share one provider function"
            )
        return existing

    def grant_backup(
        self, scope: Construct, construct_id: str, *, backup_arn: str, actions: Sequence[str]
    ) -> iam.Policy:
        """Attach a policy (created in ``scope``) that allows ``actions`` on one backup ARN only."""
        return iam.Policy(
            scope,
            construct_id,
            roles=[self.role],
            statements=[iam.PolicyStatement(actions=list(actions), resources=[backup_arn])],
        )

    @property
    def code_asset(self) -> s3_assets.Asset:
        """The function's code asset (the staged handler package plus crhelper)."""
        return cast(s3_assets.Asset, self.function.node.find_child("Code"))

    @property
    def staged_code_dir(self) -> Path:
        """Directory in the cloud assembly holding the code exactly as it is zipped for Lambda."""
        stage = Stage.of(self)
        if stage is None:
            raise ValueError(f"{self.node.path} is not inside an App or Stage: nothing is synthesized")
        return (Path(stage.outdir) / self.code_asset.asset_path).resolve()
