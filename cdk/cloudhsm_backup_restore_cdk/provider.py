"""The provider Lambda that RestoredBackups share: its settings are given once, here, as for aws-cdk-lib's Provider."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from aws_cdk import Aws, CfnResource, Duration, Fn, RemovalPolicy, Stack, Stage
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sqs as sqs
from cloudhsm_backup_restore_pipeline.contract import (
    ARCHITECTURE,
    HANDLER,
    LAMBDA_TIMEOUT_SECONDS,
    MEMORY_MB,
    POLL_INVOKE_PRINCIPAL,
    PROVIDER_ID_ENV,
    RESOURCE_TYPE,
    RUNTIME,
)
from constructs import Construct, IConstruct

from cloudhsm_backup_restore_cdk import validation
from cloudhsm_backup_restore_cdk.bundling import lambda_code
from cloudhsm_backup_restore_cdk.grants import (
    DEFAULT_MANAGED_POLICIES_PER_ROLE,
    MAX_MANAGED_POLICIES_PER_ROLE,
    BackupGrants,
)
from cloudhsm_backup_restore_cdk.provider_policies import (
    base_policy,
    default_dead_letter_queue,
    network_interface_policy,
    rule_arn_prefix,
)

PROVIDER_ID = "CloudHsmBackupRestoreProvider"
"""Construct id of the stack's default provider (and, with a number appended, of its overflow providers)."""

DEFAULT_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

REPLACEMENT_HEADROOM = 1
"""Managed policy slots kept free on the role: CloudFormation attaches a replacing policy before it deletes the
old one in the cleanup phase, so the role briefly holds both."""

_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


def provider_id_token() -> str:
    """contract.provider_id_expression() in CDK terms: the last 12 hex digits of the stack's GUID."""
    guid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return Fn.select(4, Fn.split("-", guid))


class RestoreProvider(Construct):
    """Role, log group and Lambda function behind the RestoredBackups of one stack.

    Every option is a property of the one function, so it is given once, here (like aws-cdk-lib's
    ``custom_resources.Provider``), and each ``RestoredBackup(provider=...)`` uses it. Without a
    ``provider``, a RestoredBackup uses the stack's default one (``RestoreProvider.of(stack)``), with
    every option at its default.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        log_retention: logs.RetentionDays = DEFAULT_LOG_RETENTION,
        log_group_encryption_key: kms.IKey | None = None,
        reserved_concurrent_executions: int | None = None,
        tracing: lambda_.Tracing = lambda_.Tracing.ACTIVE,
        dead_letter_queue: sqs.IQueue | None = None,
        managed_policies_per_role: int = DEFAULT_MANAGED_POLICIES_PER_ROLE,
    ) -> None:
        """Create the provider.

        :param vpc: VPC to run the function in; it then needs a route (NAT or VPC endpoints) to the services in
            ``contract.VPC_ENDPOINT_SERVICES`` and to CloudFormation's S3 response URL. Default: not in a VPC.
        :param vpc_subnets: Subnets of ``vpc``; only with ``vpc``. Default: the VPC's private subnets.
        :param security_groups: Security groups; only with ``vpc``. Default: one new egress-only group.
        :param log_retention: Retention of the function's log group. Default: three months.
        :param log_group_encryption_key: KMS key encrypting the log group; its key policy must allow the
            CloudWatch Logs service principal of the region. Default: CloudWatch Logs' own encryption.
        :param reserved_concurrent_executions: Reserved concurrency of the function. Default: none reserved.
        :param tracing: X-Ray tracing mode; the function runs a few times per deployment, so traces cost next
            to nothing. Default: ``Tracing.ACTIVE``.
        :param dead_letter_queue: SQS queue receiving the events that failed every asynchronous retry
            (CloudFormation and EventBridge invoke the function asynchronously); if it is KMS-encrypted, its key
            must let the role use it. Default: a new queue (SQS-managed encryption, TLS only, 14 days).
        :param managed_policies_per_role: The account's quota of managed policies per role (IAM: 10 by
            default, up to 20 on request); backups beyond what fits go to another provider. Default: 10.
        """
        super().__init__(scope, construct_id)
        validation.check_provider_options(
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            log_retention=log_retention,
            log_group_encryption_key=log_group_encryption_key,
            reserved_concurrent_executions=reserved_concurrent_executions,
            tracing=tracing,
            dead_letter_queue=dead_letter_queue,
        )
        # The provider's own policies, one backup policy, and the headroom for a replacement.
        fewest = 1 + (vpc is not None) + 1 + REPLACEMENT_HEADROOM
        if isinstance(managed_policies_per_role, bool) or not isinstance(managed_policies_per_role, int):
            raise TypeError(
                f"RestoreProvider managed_policies_per_role must be an int, got {managed_policies_per_role!r}"
            )
        if not fewest <= managed_policies_per_role <= MAX_MANAGED_POLICIES_PER_ROLE:
            raise ValueError(
                f"RestoreProvider managed_policies_per_role must be an int from {fewest} to "
                f"{MAX_MANAGED_POLICIES_PER_ROLE} (IAM's quota of managed policies per role), got "
                f"{managed_policies_per_role!r}"
            )
        self.settings: dict[str, Any] = {
            "vpc": vpc,
            "vpc_subnets": vpc_subnets,
            "security_groups": security_groups,
            "log_retention": log_retention,
            "log_group_encryption_key": log_group_encryption_key,
            "reserved_concurrent_executions": reserved_concurrent_executions,
            "tracing": tracing,
            "dead_letter_queue": dead_letter_queue,
            "managed_policies_per_role": managed_policies_per_role,
        }
        """The options this provider was created with (overflow providers are created with the same)."""
        self.provider_id = provider_id_token()
        """The id (a token) that names this provider's polling rules and parameters (contract PROVIDER_ID_ENV)."""

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention,
            encryption_key=log_group_encryption_key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        """The function's logs; retained on stack deletion so the last Delete stays readable."""
        self.role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the {RESOURCE_TYPE} provider",
        )
        """The function's role: no inline policy, only the customer managed policies below."""
        self.base_policy = base_policy(self, self.role, self.log_group, self.provider_id)
        """Logs, DescribeBackups, and the polling hand-off's rules and parameters (this provider's only)."""

        self.dead_letter_queue = dead_letter_queue or default_dead_letter_queue(self)
        """Where Lambda puts an event (with its ResponseURL) that failed every retry: the trace of a lost request."""
        self.base_policy.add_statements(
            iam.PolicyStatement(
                sid="DeadLetterQueue", actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn]
            )
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
            # An immutable reference: the Role GetAtt already orders the function after the role, and grants
            # made through an L2 role would add inline policies. Grants go to the managed policies.
            role=iam.Role.from_role_arn(self, "FunctionRole", self.role.role_arn, mutable=False),
            log_group=self.log_group,
            environment={PROVIDER_ID_ENV: self.provider_id},
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            reserved_concurrent_executions=reserved_concurrent_executions,
            tracing=tracing,
            dead_letter_queue=self.dead_letter_queue,
        )
        function_resource = cast(CfnResource, self.function.node.default_child)
        if tracing is not lambda_.Tracing.DISABLED:
            self.base_policy.add_statements(
                iam.PolicyStatement(
                    sid="Tracing", actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]
                )
            )
        # Lambda checks the role's permissions (VPC, DLQ) when it creates the function.
        function_resource.node.add_dependency(self.base_policy)
        self.network_policy: iam.ManagedPolicy | None = None
        if vpc is not None:
            self.network_policy = network_interface_policy(self, self.role, self.function)
            function_resource.node.add_dependency(self.network_policy)

        self.poll_permission = lambda_.CfnPermission(
            self,
            "PollInvokePermission",
            action="lambda:InvokeFunction",
            function_name=self.function.function_arn,
            principal=POLL_INVOKE_PRINCIPAL,
            source_arn=rule_arn_prefix(self, self.provider_id) + "*",
            source_account=Stack.of(self).account,
        )
        """The one invoke permission the polling hand-off needs, granted at deploy time to this provider's rules."""
        self.backup_grants = BackupGrants(
            self,
            role=self.role,
            provider_id=self.provider_id,
            own_policies=1 + (vpc is not None),
            quota=managed_policies_per_role,
            headroom=REPLACEMENT_HEADROOM,
        )
        """The per-backup customer managed policies of the role."""

    @property
    def service_token(self) -> str:
        """The function ARN that RestoredBackups of this provider name as ServiceToken."""
        return self.function.function_arn

    @property
    def shared_grants(self) -> list[IConstruct]:
        """What every RestoredBackup of this provider depends on: created before it, deleted after it."""
        return [self.base_policy, self.poll_permission]

    def has_room(self, actions: Sequence[str], cost: int, *, key: str | None) -> bool:
        """Whether one more backup fits without exceeding any IAM quota (``key`` None: it needs its own policy)."""
        return self.backup_grants.has_room(actions, cost, key=key)

    def grant_backup(
        self, *, key: str | None, actions: Sequence[str], backup_arn: str, cost: int, tokens: Sequence[str]
    ) -> iam.CfnManagedPolicy:
        """Grant ``actions`` on one backup ARN; returns the managed policy the backup's resource must depend on."""
        if not self.has_room(actions, cost, key=key):
            raise ValueError(
                f"RestoreProvider {self.node.path} is full: its role would need more than "
                f"{self.backup_grants.quota} managed policies (IAM quota, {REPLACEMENT_HEADROOM} kept free for "
                "replacements). Create another RestoreProvider (or raise managed_policies_per_role up to 20 after "
                "raising the account's quota)"
            )
        return self.backup_grants.grant(key=key, actions=actions, backup_arn=backup_arn, cost=cost, tokens=tokens)

    @property
    def backup_policies(self) -> list[iam.CfnManagedPolicy]:
        """The managed policies holding the per-backup grants."""
        return self.backup_grants.policies

    @classmethod
    def of(
        cls, scope: Construct, *, actions: Sequence[str] = (), cost: int = 0, key: str | None = ""
    ) -> RestoreProvider:
        """The stack's default provider with room for one more backup, created (with default options) on first use.

        When the default provider's role is full, an overflow provider (``<PROVIDER_ID>2``, ...) with the same
        options takes the next backups.
        """
        stack = Stack.of(scope)
        first = stack.node.try_find_child(PROVIDER_ID)
        if first is None:
            return cls(stack, PROVIDER_ID)
        if not isinstance(first, RestoreProvider):
            raise TypeError(f"Construct id {PROVIDER_ID} at stack {stack.node.path} is taken by another construct")
        return first.with_room(actions, cost, key=key)

    def with_room(self, actions: Sequence[str], cost: int, *, key: str | None) -> RestoreProvider:
        """This provider, or the first overflow provider created like it that has room for one more backup."""
        provider: RestoreProvider = self
        number = 1
        while not provider.has_room(actions, cost, key=key):
            number += 1
            overflow_id = f"{self.node.id}{number}"
            found = self.node.scope.node.try_find_child(overflow_id) if self.node.scope else None
            if found is None:
                found = RestoreProvider(cast(Construct, self.node.scope), overflow_id, **self.settings)
            provider = cast(RestoreProvider, found)
        return provider

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


__all__ = ["DEFAULT_LOG_RETENTION", "PROVIDER_ID", "RestoreProvider", "provider_id_token"]
