"""The provider Lambda that RestoredBackups share: its settings are given once, here, as for aws-cdk-lib's Provider."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from aws_cdk import Annotations, Aws, CfnResource, Duration, Fn, RemovalPolicy, Stack, Stage
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sqs as sqs
from cloudhsm_backup_restore_pipeline.contract import (
    ARCHITECTURE,
    EVENT_INVOKE_MAX_EVENT_AGE_SECONDS,
    EVENT_INVOKE_MAX_RETRY_ATTEMPTS,
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
from cloudhsm_backup_restore_cdk.grants import MANAGED_POLICIES_PER_ROLE, BackupGrants
from cloudhsm_backup_restore_cdk.nag import acknowledge
from cloudhsm_backup_restore_cdk.provider_policies import (
    add_network_interface_statements,
    base_policy,
    default_dead_letter_queue,
    rule_arn_prefix,
)

_DEFAULT_PROVIDER_ID = "CloudHsmBackupRestoreProvider"
"""Construct id (under the stack) of the default provider created for RestoredBackups without ``provider=``."""
_REGISTRY_ID = "CloudHsmBackupRestoreRegistry"
SECOND_PROVIDER_WARNING = "@cloudhsm-backup-restore/cdk:secondProvider"
"""Warning id when a stack holds more than one RestoreProvider (``Annotations.of(p).acknowledge_warning``)."""

DEFAULT_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
DEFAULT_LOG_REMOVAL_POLICY = RemovalPolicy.RETAIN
"""The log group outlives the stack by default, so the last Delete stays readable."""

_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


def provider_id_token() -> str:
    """contract.provider_id_expression() in CDK terms: the last 12 hex digits of the stack's GUID."""
    guid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return Fn.select(4, Fn.split("-", guid))


class _GrantsToManagedPolicy(iam.Role):
    """The function's role when the provider creates it: whatever is granted to the role or the function
    (aws-cdk-lib's own dead-letter queue and X-Ray grants, ``bucket.grant_read(provider.function)``,
    ``provider.function.add_to_role_policy(...)``) goes into the provider's customer managed policy, never into an
    inline policy (NIST 800-53 / HIPAA ``IAMNoInlinePolicy``)."""

    grants_policy: iam.ManagedPolicy | None = None

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> iam.AddToPrincipalPolicyResult:
        """Add ``statement`` to the provider policy (called by aws-cdk-lib's grants, through jsii)."""
        if self.grants_policy is None:
            raise ValueError(f"{self.node.path}: grants arrived before the provider policy exists")
        self.grants_policy.add_statements(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True, policy_dependable=self.grants_policy)


@dataclass
class _StackRegistry:
    """What one stack holds: its providers in creation order (the first is the default) and the backups named."""

    providers: list[RestoreProvider] = field(default_factory=list)
    backups: dict[tuple[str, str], str] = field(default_factory=dict)
    """(backup id, region) of literal backups -> construct path of the first RestoredBackup naming it."""


class _Registry(Construct):
    """Holds the stack's _StackRegistry (a construct, so that it lives and dies with the stack)."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack, _REGISTRY_ID)
        self.state = _StackRegistry()


def stack_registry(scope: Construct) -> _StackRegistry:
    """The registry of ``scope``'s stack, created on first use."""
    stack = Stack.of(scope)
    found = stack.node.try_find_child(_REGISTRY_ID)
    return (found if isinstance(found, _Registry) else _Registry(stack)).state


class RestoreProvider(Construct):
    """Role, log group and Lambda function behind RestoredBackups: give its options once, here.

    Like aws-cdk-lib's ``custom_resources.Provider``, one provider serves many resources. The **first**
    RestoreProvider created in a stack is the stack's default: every ``RestoredBackup`` without ``provider=``
    uses it. Create it before the backups to configure it (VPC, log group, role, ...); a stack with no
    RestoreProvider gets one with every option at its default when its first RestoredBackup needs it. A second
    provider in one stack is reported at synth (warning ``SECOND_PROVIDER_WARNING``).

    The role holds only customer managed policies: ``policy`` (everything but the backups, including what is
    granted to ``function`` or ``role``) and up to nine backup policies, all updated in place by a stack update.

    Example::

        import aws_cdk as cdk
        from aws_cdk import aws_logs as logs
        from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider

        app = cdk.App()
        stack = cdk.Stack(app, "Restores", env=cdk.Environment(account="111122223333", region="eu-west-1"))
        provider = RestoreProvider(stack, "Provider", log_retention=logs.RetentionDays.ONE_YEAR)
        backup = RestoredBackup(stack, "Backup", backup_id="backup-abcdefghijk")  # uses ``provider``
        assert backup.provider is provider
        app.synth()
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role: iam.IRole | None = None,
        function_name: str | None = None,
        log_group: logs.ILogGroup | None = None,
        log_retention: logs.RetentionDays | None = None,
        log_removal_policy: RemovalPolicy | None = None,
        log_group_encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        allow_public_subnet: bool = False,
        reserved_concurrent_executions: int | None = None,
        tracing: lambda_.Tracing = lambda_.Tracing.ACTIVE,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        """Create the provider.

        :param role: Execution role of the function; the provider attaches its customer managed policies to it
            (up to ten with the most backups a stack can hold), and grants through ``function`` follow that role's
            own rules. It must trust ``lambda.amazonaws.com``. Default: a new role.
        :param function_name: Name of the function. Default: generated by CloudFormation.
        :param log_group: The function's log group; then ``log_retention``, ``log_removal_policy`` and
            ``log_group_encryption_key`` are not allowed. Default: a new log group.
        :param log_retention: Retention of the new log group (``RetentionDays.INFINITE`` keeps logs forever).
            Default: three months.
        :param log_removal_policy: What deleting the stack does to the new log group. Default: ``RETAIN``.
        :param log_group_encryption_key: KMS key encrypting the new log group; its key policy must allow the
            CloudWatch Logs service principal of the region. Default: CloudWatch Logs' own encryption.
        :param vpc: VPC to run the function in; it then needs a route (NAT or VPC endpoints) to the services in
            ``contract.VPC_ENDPOINT_SERVICES`` and to CloudFormation's S3 response URL. Default: not in a VPC.
        :param vpc_subnets: Subnets of ``vpc``; only with ``vpc``. Default: the VPC's private subnets.
        :param security_groups: Security groups; only with ``vpc``. Default: one new egress-only group.
        :param allow_public_subnet: Allow ``vpc_subnets`` to be public (as for ``lambda.Function``); only with
            ``vpc``. Default: False.
        :param reserved_concurrent_executions: Reserved concurrency of the function. Default: none reserved.
        :param tracing: X-Ray tracing mode; the function runs a few times per deployment, so traces cost next
            to nothing. Default: ``Tracing.ACTIVE``.
        :param dead_letter_queue: SQS queue receiving the events that failed (CloudFormation and EventBridge
            invoke the function asynchronously, and it never retries); if it is KMS-encrypted, its key must let
            the role use it. Default: a new queue (SQS-managed encryption, TLS only, 14 days).

        Invalid values raise TypeError/ValueError naming the option and what was expected.
        """
        super().__init__(scope, construct_id)
        validation.check_provider_options(
            role=role,
            function_name=function_name,
            log_group=log_group,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
            log_group_encryption_key=log_group_encryption_key,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            allow_public_subnet=allow_public_subnet,
            reserved_concurrent_executions=reserved_concurrent_executions,
            tracing=tracing,
            dead_letter_queue=dead_letter_queue,
        )
        self.provider_id = provider_id_token()
        """The id (a token) that names this provider's polling rules and parameters (contract PROVIDER_ID_ENV)."""

        self.log_group: logs.ILogGroup = log_group or logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention or DEFAULT_LOG_RETENTION,
            encryption_key=log_group_encryption_key,
            removal_policy=log_removal_policy or DEFAULT_LOG_REMOVAL_POLICY,
        )
        """The function's logs."""
        own_role = None
        if role is None:
            own_role = _GrantsToManagedPolicy(
                self,
                "ServiceRole",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"Runs the {RESOURCE_TYPE} provider",
            )
        self.role: iam.IRole = role or cast(iam.IRole, own_role)
        """The function's role: without an inline policy when the provider created it."""
        self.policy = base_policy(self, self.role, self.log_group, self.provider_id)
        """The provider's own managed policy: logs, DescribeBackups, owned backups, polling, and grants to the role."""
        if own_role is not None:
            own_role.grants_policy = self.policy

        self.dead_letter_queue = dead_letter_queue or default_dead_letter_queue(self)
        """Where Lambda puts an event (with its ResponseURL) that failed: the trace of a lost request."""

        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=f"Provider of {RESOURCE_TYPE}: restores deleted CloudHSM backups",
            runtime=lambda_.Runtime(RUNTIME, lambda_.RuntimeFamily.PYTHON),
            architecture=_ARCHITECTURES[ARCHITECTURE],
            handler=HANDLER,
            code=lambda_code(),
            timeout=Duration.seconds(LAMBDA_TIMEOUT_SECONDS),
            memory_size=MEMORY_MB,
            role=self.role,
            log_group=self.log_group,
            environment={PROVIDER_ID_ENV: self.provider_id},
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            allow_public_subnet=allow_public_subnet if vpc is not None else None,
            reserved_concurrent_executions=reserved_concurrent_executions,
            tracing=tracing,
            dead_letter_queue=self.dead_letter_queue,
            # AWS::Lambda::EventInvokeConfig (contract): an asynchronous event is never retried, nor kept past the
            # longest ServiceTimeout.
            retry_attempts=EVENT_INVOKE_MAX_RETRY_ATTEMPTS,
            max_event_age=Duration.seconds(EVENT_INVOKE_MAX_EVENT_AGE_SECONDS),
        )
        """The provider function; grants to it (``add_to_role_policy``, ``bucket.grant_read``, ...) go to ``role``."""
        function_resource = cast(CfnResource, self.function.node.default_child)
        acknowledge(
            self.function.node.find_child("EventInvokeConfig"),
            "Serverless-LambdaAsyncFailureDestination",
            "an event that fails goes to the function's dead-letter queue (DeadLetterConfig), with its ResponseURL; "
            "an OnFailure destination to the same queue would deliver each failed event twice",
        )
        if vpc is not None:
            add_network_interface_statements(self.policy, self.function)
        # Lambda checks the role's permissions (VPC, DLQ) when it creates the function.
        function_resource.node.add_dependency(self.policy)
        # aws-cdk-lib's Function adds a DependsOn on a role it is given, which the Role GetAtt already implies:
        # harmless, and cfn-lint's W3005 says so. Silenced on this resource only, where cfn-lint reads it.
        function_resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

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
        self._backup_grants = BackupGrants(self, role=self.role, slots=MANAGED_POLICIES_PER_ROLE - 1)
        self._register()

    def _register(self) -> None:
        registry = stack_registry(self)
        registry.providers.append(self)
        if len(registry.providers) > 1:
            first = registry.providers[0]
            Annotations.of(self).add_warning_v2(
                SECOND_PROVIDER_WARNING,
                f"{Stack.of(self).node.path} now has {len(registry.providers)} RestoreProviders "
                f"({', '.join(p.node.path for p in registry.providers)}), each with its own function, role, queue "
                f"and log group. RestoredBackups without provider= use the first, {first.node.path}"
                + (
                    ", created with default options for a RestoredBackup without provider=: create your "
                    "RestoreProvider before the RestoredBackups to make it the stack's default"
                    if first.node.id == _DEFAULT_PROVIDER_ID
                    else ""
                )
                + ". Acknowledge this warning if the second provider is intended",
            )

    @property
    def service_token(self) -> str:
        """The function ARN that RestoredBackups of this provider name as ServiceToken."""
        return self.function.function_arn

    @property
    def backup_policies(self) -> list[iam.ManagedPolicy]:
        """The managed policies holding the per-backup grants (updated in place, never replaced)."""
        return self._backup_grants.policies

    def _grant_backup(self, actions: Sequence[str], backup_arn: str, cost: int) -> list[IConstruct]:
        """Grant ``actions`` on one backup ARN; returns what the backup's resource must depend on."""
        policy = self._backup_grants.grant(actions, backup_arn, cost)
        return [policy, self.policy, self.poll_permission]

    @classmethod
    def _default_of(cls, scope: Construct) -> RestoreProvider:
        """The stack's default provider: the first RestoreProvider created in ``scope``'s stack, or a new one
        (every option at its default) when the stack has none yet."""
        registry = stack_registry(scope)
        if registry.providers:
            return registry.providers[0]
        return cls(Stack.of(scope), _DEFAULT_PROVIDER_ID)

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


__all__ = ["RestoreProvider"]
