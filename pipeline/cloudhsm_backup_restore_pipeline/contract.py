"""The one place that says how the provider is deployed; CDK, templates and tests all read it."""

from __future__ import annotations

from typing import Any

from cloudhsm_backup_restore.attributes import ATTRIBUTE_NAMES
from cloudhsm_backup_restore.ownership import OWNER_TAG_KEY
from cloudhsm_backup_restore.polling import (
    POLL_RULE_PREFIX,
    PROVIDER_ID_ENV,
    RESPONSE_PARAMETER_PREFIX,
    poll_rule_prefix,
    response_parameter_prefix,
)
from cloudhsm_backup_restore.properties import (
    CLOUDFORMATION_PROPERTIES,
    MAX_SERVICE_TIMEOUT,
    RESOURCE_PROPERTIES,
    OnDelete,
)

HANDLER = "cloudhsm_backup_restore.app.handler"
RUNTIME = "python3.14"
ARCHITECTURE = "arm64"
MEMORY_MB = 256
LAMBDA_TIMEOUT_SECONDS = 300
"""Each invocation waits in-process up to this; longer restores hand off to crhelper's polling."""
RESOURCE_TYPE = "Custom::CloudHsmBackupRestore"
EVENT_INVOKE_MAX_RETRY_ATTEMPTS = 0
"""AWS::Lambda::EventInvokeConfig MaximumRetryAttempts. CloudFormation and EventBridge invoke the function
asynchronously; Lambda retries a function error or timeout twice by default (Lambda Developer Guide,
"Asynchronous invocation"). A retry of a Create that crhelper already answered FAILED would act for a resource
CloudFormation has rolled back, so the provider never retries: a poll that fails is retried by the rule's next
firing instead."""
EVENT_INVOKE_MAX_EVENT_AGE_SECONDS = MAX_SERVICE_TIMEOUT
"""AWS::Lambda::EventInvokeConfig MaximumEventAgeInSeconds (60 to 21600; default 21600). A throttled event is
kept up to this long; past CloudFormation's longest ServiceTimeout (3600 s, AWS::CloudFormation::CustomResource)
nobody listens for its answer, so it is dropped instead of acting late."""
LOG_RETENTION_DAYS = 90

DESCRIBE_ACTIONS = ("cloudhsm:DescribeBackups",)
"""No resource-level permission exists for DescribeBackups: these go on Resource '*' (Service Authorization
Reference, AWS CloudHSM: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudhsm.html)."""
RESTORE_ACTIONS = ("cloudhsm:RestoreBackup",)
OWNERSHIP_ACTIONS = ("cloudhsm:TagResource", "cloudhsm:UntagResource", "cloudhsm:ListTags")
"""The ownership record, a tag on the backup (OWNER_TAG_KEY): TagResource on restore, a same-stack rename and the
hand-back, UntagResource when the owner's Delete retains the backup, ListTags when DescribeBackups carries none. All
three take the backup ARN as resource (Service Authorization Reference, resource type ``backup``)."""
NEVER_EXPIRES_ACTIONS = ("cloudhsm:ModifyBackupAttributes",)
"""Every configuration: a restored backup is exempted from the retention policy unless NeverExpires is false."""
DELETE_ACTIONS = ("cloudhsm:DeleteBackup",)
POLL_RULE_ACTIONS = ("events:PutRule", "events:PutTargets", "events:RemoveTargets", "events:DeleteRule")
"""On arn:<partition>:events:<region>:<account>:rule/<poll_rule_prefix(provider id)>*"""
POLL_PARAMETER_ACTIONS = ("ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter")
"""On arn:<partition>:ssm:<region>:<account>:parameter<response_parameter_prefix(provider id)>* (the ResponseURL
during a hand-off, a SecureString under the AWS managed key aws/ssm, which needs no KMS grant)."""
POLL_INVOKE_PRINCIPAL = "events.amazonaws.com"
"""The one lambda:InvokeFunction permission granted at deploy time names this principal and, as SourceArn,
poll_source_arn_pattern(...): the handler makes no Lambda policy edits for its own waits."""

VPC_ENDPOINT_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("cloudhsmv2", "cloudhsmv2", "interface endpoint: every CloudHSM backup call"),
    ("events", "events", "interface endpoint: the polling hand-off's EventBridge rule"),
    ("ssm", "ssm", "interface endpoint: the ResponseURL parked during a hand-off"),
    ("s3", "s3", "gateway endpoint: CloudFormation's ResponseURL is a presigned S3 URL"),
)
"""(boto3 client the handler creates, VPC endpoint service com.amazonaws.<region>.<name>, why): what a function
in subnets without a NAT route needs. Logs need no endpoint (Lambda ships them). A test keeps the boto3 names in
step with the clients handler/ creates."""


def poll_source_arn_pattern(partition: str, region: str, account: str, provider_id: str) -> str:
    """The SourceArn of the deploy-time invoke permission: every poll rule of one provider."""
    return f"arn:{partition}:events:{region}:{account}:rule/{poll_rule_prefix(provider_id)}*"


def provider_id_expression() -> dict[str, Any]:
    """CloudFormation value of PROVIDER_ID_ENV: the last 12 hex digits of the stack's GUID (unique per stack)."""
    guid = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    return {"Fn::Select": [4, {"Fn::Split": ["-", guid]}]}


LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
"""On the provider's own log group (no managed policy)."""
VPC_ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
"""What Lambda needs to manage a VPC function's network interfaces (AWSLambdaVPCAccessExecutionRole's EC2 part)."""


def backup_actions(*, on_delete: OnDelete, never_expires: bool | None = None) -> tuple[str, ...]:
    """CloudHSM actions on the backup ARNs, only those this configuration calls.

    ``never_expires`` no longer narrows the grant: with it unset the resource sets NeverExpires true after a
    restore, and with false it may have to clear it, so ModifyBackupAttributes is always needed.
    """
    del never_expires
    actions = [*RESTORE_ACTIONS, *OWNERSHIP_ACTIONS, *NEVER_EXPIRES_ACTIONS]
    if on_delete is OnDelete.DELETE:
        actions += DELETE_ACTIONS
    return tuple(actions)


ALL_BACKUP_ACTIONS = RESTORE_ACTIONS + OWNERSHIP_ACTIONS + NEVER_EXPIRES_ACTIONS + DELETE_ACTIONS
"""What a provider shared by any consumer (the standalone templates) may need on backup ARNs."""

__all__ = [
    "ALL_BACKUP_ACTIONS",
    "ARCHITECTURE",
    "ATTRIBUTE_NAMES",
    "CLOUDFORMATION_PROPERTIES",
    "DELETE_ACTIONS",
    "DESCRIBE_ACTIONS",
    "EVENT_INVOKE_MAX_EVENT_AGE_SECONDS",
    "EVENT_INVOKE_MAX_RETRY_ATTEMPTS",
    "HANDLER",
    "LAMBDA_TIMEOUT_SECONDS",
    "LOG_ACTIONS",
    "LOG_RETENTION_DAYS",
    "MEMORY_MB",
    "NEVER_EXPIRES_ACTIONS",
    "OWNERSHIP_ACTIONS",
    "OWNER_TAG_KEY",
    "POLL_INVOKE_PRINCIPAL",
    "POLL_PARAMETER_ACTIONS",
    "POLL_RULE_ACTIONS",
    "POLL_RULE_PREFIX",
    "PROVIDER_ID_ENV",
    "RESOURCE_PROPERTIES",
    "RESOURCE_TYPE",
    "RESPONSE_PARAMETER_PREFIX",
    "RESTORE_ACTIONS",
    "RUNTIME",
    "VPC_ENDPOINT_SERVICES",
    "VPC_ENI_ACTIONS",
    "backup_actions",
    "poll_rule_prefix",
    "poll_source_arn_pattern",
    "provider_id_expression",
    "response_parameter_prefix",
]
