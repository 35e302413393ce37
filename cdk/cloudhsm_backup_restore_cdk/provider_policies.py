"""The provider's own customer managed policy (everything but the per-backup grants), each wildcard acknowledged."""

from __future__ import annotations

from typing import cast

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from cloudhsm_backup_restore_pipeline.contract import (
    DESCRIBE_ACTIONS,
    LOG_ACTIONS,
    POLL_PARAMETER_ACTIONS,
    POLL_RULE_ACTIONS,
    VPC_ENI_ACTIONS,
    poll_rule_prefix,
    response_parameter_prefix,
)
from constructs import Construct

from cloudhsm_backup_restore_cdk.grants import owned_backups_arn, owned_backups_statement
from cloudhsm_backup_restore_cdk.nag import acknowledge, acknowledge_wildcard

STAR = "*"


def rule_arn_prefix(scope: Construct, provider_id: str) -> str:
    """``arn:<partition>:events:<region>:<account>:rule/<poll_rule_prefix(provider_id)>`` (append ``*``)."""
    return Stack.of(scope).format_arn(
        service="events",
        resource="rule",
        resource_name=poll_rule_prefix(provider_id),
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def parameter_arn_prefix(scope: Construct, provider_id: str) -> str:
    """``arn:<partition>:ssm:<region>:<account>:parameter/<response_parameter_prefix(provider_id)>`` (append ``*``)."""
    return Stack.of(scope).format_arn(
        service="ssm",
        resource="parameter",
        resource_name=response_parameter_prefix(provider_id).lstrip("/"),
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def base_policy(scope: Construct, role: iam.IRole, log_group: logs.ILogGroup, provider_id: str) -> iam.ManagedPolicy:
    """Logs, DescribeBackups, the owned backups, and the polling hand-off's rules and parameters (this provider's).

    The rule and parameter wildcards carry the provider id (the stack GUID's last 12 hex digits), so two
    providers in one account and region can neither read each other's ResponseURLs nor touch each other's rules.
    Its content does not depend on the backups, so no edit of the backups changes it.
    """
    rules = rule_arn_prefix(scope, provider_id) + STAR
    parameters = parameter_arn_prefix(scope, provider_id) + STAR
    policy = iam.ManagedPolicy(
        scope,
        "ProviderPolicy",
        roles=[role],
        description="cloudhsm-backup-restore provider: logs, DescribeBackups and its own polling rules and parameters",
        statements=[
            iam.PolicyStatement(sid="WriteOwnLogs", actions=list(LOG_ACTIONS), resources=[log_group.log_group_arn]),
            iam.PolicyStatement(sid="DescribeBackups", actions=list(DESCRIBE_ACTIONS), resources=[STAR]),
            owned_backups_statement(scope),
            iam.PolicyStatement(sid="PollingRules", actions=list(POLL_RULE_ACTIONS), resources=[rules]),
            iam.PolicyStatement(sid="PollingResponseUrl", actions=list(POLL_PARAMETER_ACTIONS), resources=[parameters]),
        ],
    )
    acknowledge_wildcard(
        policy,
        STAR,
        f"{', '.join(DESCRIBE_ACTIONS)} (and X-Ray's PutTraceSegments/PutTelemetryRecords when tracing is on) have "
        "no resource-level permissions: IAM only accepts Resource '*' for them",
    )
    acknowledge_wildcard(
        policy,
        owned_backups_arn(scope),
        "only backups carrying this project's ownership tag (condition aws:ResourceTag), which the provider "
        "writes on restore: the Delete of a backup removed from the template runs after its ARN left the "
        "per-backup policies, which are updated in place so that no edit can exceed IAM's quotas",
    )
    acknowledge_wildcard(
        policy,
        rules,
        "crhelper's polling hand-off creates EventBridge rules with generated names; every rule this provider "
        "creates starts with its own prefix (its stack's id), so the wildcard covers only this provider's rules: "
        "another provider in the same account and region cannot touch them",
    )
    acknowledge_wildcard(
        policy,
        parameters,
        "during a polling hand-off the ResponseURL waits in an SSM SecureString named after the generated rule, "
        "under this provider's own path (its stack's id): another provider in the same account and region cannot "
        "read or overwrite it",
    )
    return policy


def add_network_interface_statements(policy: iam.ManagedPolicy, function: lambda_.Function) -> None:
    """The EC2 permissions Lambda uses for a VPC function's network interfaces, scoped to its own subnets and groups."""
    stack = Stack.of(policy)

    def ec2_arn(resource: str, name: str) -> str:
        return stack.format_arn(
            service="ec2", resource=resource, resource_name=name, arn_format=ArnFormat.SLASH_RESOURCE_NAME
        )

    interfaces = ec2_arn("network-interface", STAR)
    every_ec2_resource = ec2_arn(STAR, STAR)
    placement = cast(
        lambda_.CfnFunction.VpcConfigProperty, cast(lambda_.CfnFunction, function.node.default_child).vpc_config
    )
    policy.add_statements(
        iam.PolicyStatement(
            sid="DescribeNetworkInterfaces",
            actions=[action for action in VPC_ENI_ACTIONS if ":Describe" in action],
            resources=[STAR],
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
        # The Lambda Developer Guide ("Giving Lambda functions access to resources in an Amazon VPC"): for
        # ec2:DeleteNetworkInterface "either specify a unique resource ID, or include all resource IDs"
        # (its example: arn:aws:ec2:<region>:<account>:*/*), else the function may not reach the VPC; the
        # interfaces' ids are unknown in advance. cfn-templates/provider.yaml grants the same.
        iam.PolicyStatement(
            sid="ManageNetworkInterfaces",
            actions=[a for a in VPC_ENI_ACTIONS if ":Describe" not in a and ":Create" not in a],
            resources=[every_ec2_resource],
        ),
    )
    acknowledge_wildcard(
        policy,
        every_ec2_resource,
        "The Lambda Developer Guide requires a specific id or all resource ids for DeleteNetworkInterface (and "
        "Assign/UnassignPrivateIpAddresses); the ids of the interfaces Lambda creates are unknown in advance. "
        "Limited to this account and region",
    )
    acknowledge_wildcard(
        policy,
        interfaces,
        "Lambda creates the VPC function's network interfaces with ids unknown in advance; the wildcard is "
        "limited to network interfaces in this account and region, created only in the function's own subnets "
        "and security groups",
    )


def default_dead_letter_queue(scope: Construct) -> sqs.Queue:
    """The function's dead-letter queue: SQS-managed encryption, TLS-only access, kept the longest SQS allows."""
    queue = sqs.Queue(
        scope,
        "DeadLetterQueue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(
        queue,
        "Serverless-SQSRedrivePolicy",
        "this queue is itself the terminal dead-letter queue of the provider function: a redrive policy would "
        "only move its messages on to yet another queue",
    )
    return queue
