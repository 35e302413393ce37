"""Synth-time checks: every wrong option fails naming the option and the expected type or value."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Annotations, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.region_info import RegionInfo
from cloudhsm_backup_restore.errors import InvalidPropertiesError
from cloudhsm_backup_restore.properties import (
    BACKUP_ID_PATTERN,
    MAX_SERVICE_TIMEOUT,
    MAX_TAGS,
    REGION_PATTERN,
    OnDelete,
    parse_properties,
)
from constructs import Construct

UNKNOWN_REGION_WARNING = "@cloudhsm-backup-restore/cdk:unknownRegion"
"""A region with a region's shape that aws-cdk-lib's RegionInfo does not know: newer, or a typo."""

TAG_KEY_LIMIT = 128
"""CloudHSM (and every AWS tagging API): a tag key has 1 to 128 characters."""


def _shown(value: object) -> str:
    """How a wrong value is named: ``RemovalPolicy.SNAPSHOT`` for an enum member (as the user wrote it), else its
    type and repr."""
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return f"{type(value).__name__} {value!r}"


def _type_error(owner: str, option: str, expected: str, value: object) -> TypeError:
    return TypeError(f"{owner} {option} must be {expected}, got {_shown(value)}")


def _is_construct_with(value: object, *attributes: str) -> bool:
    return not isinstance(value, str) and all(hasattr(value, name) for name in ("node", *attributes))


def check_backup_id(backup_id: object) -> str:
    """A backup id literal matching the pattern, or a string token."""
    if not isinstance(backup_id, str):
        raise _type_error(
            "RestoredBackup", "backup_id", "a str (a backup id like backup-abcdefghijk, or a token)", backup_id
        )
    if not Token.is_unresolved(backup_id) and not BACKUP_ID_PATTERN.fullmatch(backup_id):
        raise ValueError(
            f"RestoredBackup backup_id must match {BACKUP_ID_PATTERN.pattern} (e.g. backup-abcdefghijk), "
            f"got {backup_id!r}"
        )
    return backup_id


REMOVAL_POLICY_ON_DELETE = {RemovalPolicy.RETAIN: OnDelete.RETAIN, RemovalPolicy.DESTROY: OnDelete.DELETE}
"""RestoredBackup removal_policy -> the handler's OnDelete: what the resource's Delete does to the backup."""


def check_removal_policy(removal_policy: object) -> OnDelete:
    """RemovalPolicy.RETAIN (the backup stays READY) or RemovalPolicy.DESTROY (it is deleted again)."""
    if isinstance(removal_policy, RemovalPolicy) and removal_policy in REMOVAL_POLICY_ON_DELETE:
        return REMOVAL_POLICY_ON_DELETE[removal_policy]
    message = (
        "RestoredBackup removal_policy must be RemovalPolicy.RETAIN (the backup stays READY) or "
        f"RemovalPolicy.DESTROY (it is deleted again, back to PENDING_DELETION), got {_shown(removal_policy)}"
    )
    if not isinstance(removal_policy, RemovalPolicy):
        raise TypeError(message)
    raise ValueError(message)


def check_never_expires(never_expires: object) -> bool | None:
    """True, False or None."""
    if never_expires is not None and not isinstance(never_expires, bool):
        raise _type_error("RestoredBackup", "never_expires", "a bool (True or False) or None", never_expires)
    return never_expires


def check_region(scope: Construct, region: object) -> str | None:
    """A region name (or token) in the same partition as the stack."""
    if region is None:
        return None
    if not isinstance(region, str):
        raise _type_error(
            "RestoredBackup", "region", "a str (a region name like eu-west-1, or a token) or None", region
        )
    if Token.is_unresolved(region):
        return region
    known = {info.name for info in RegionInfo.regions}
    if region not in known and not REGION_PATTERN.fullmatch(region):
        raise ValueError(
            f"RestoredBackup region must be an AWS region name like eu-west-1 (or None for the stack's region), "
            f"got {region!r}"
        )
    if region not in known:
        # Accepted, so a region newer than the installed aws-cdk-lib still works; warned, so a typo shows at synth.
        Annotations.of(scope).add_warning_v2(
            UNKNOWN_REGION_WARNING,
            f"RestoredBackup region {region} is not a region aws-cdk-lib's RegionInfo knows: check its spelling "
            "(a region newer than the installed aws-cdk-lib deploys: acknowledge this warning)",
        )
    stack = Stack.of(scope)
    if Token.is_unresolved(stack.region):
        return region
    ours, theirs = RegionInfo.get(stack.region).partition, RegionInfo.get(region).partition
    if ours and theirs and ours != theirs:
        raise ValueError(
            f"RestoredBackup region {region} is in partition {theirs}, but stack {stack.node.path} deploys to "
            f"{stack.region} (partition {ours}): the provider cannot reach backups in another partition"
        )
    return region


def check_service_timeout(timeout: object) -> Duration:
    """A Duration of 1 second to 60 minutes in whole seconds (or a token Duration)."""
    if not isinstance(timeout, Duration):
        raise _type_error("RestoredBackup", "service_timeout", "a Duration (e.g. Duration.minutes(30))", timeout)
    if timeout.is_unresolved():
        return timeout
    seconds = timeout.to_seconds(integral=False)
    if seconds < 1:
        raise ValueError(f"RestoredBackup service_timeout must be at least 1 second, got {timeout.to_human_string()}")
    if seconds > MAX_SERVICE_TIMEOUT:
        raise ValueError(
            f"RestoredBackup service_timeout must be at most {MAX_SERVICE_TIMEOUT // 60} minutes (CloudFormation's "
            f"limit for a custom resource), got {timeout.to_human_string()}"
        )
    if seconds != int(seconds):
        raise ValueError(
            f"RestoredBackup service_timeout must be a whole number of seconds, got {timeout.to_human_string()}"
        )
    return timeout


def check_tag_key(key: object) -> str:
    """A tag key of 1 to 128 characters."""
    if not isinstance(key, str):
        raise _type_error("RestoredBackup.get_tag", "key", "a str (a tag key)", key)
    if not key or (not Token.is_unresolved(key) and len(key) > TAG_KEY_LIMIT):
        raise ValueError(f"RestoredBackup.get_tag key must have 1 to {TAG_KEY_LIMIT} characters, got {len(key)}")
    return key


_PARSED_BACKUP_ID = "backup-abcdefghijk"
"""A valid BackupId, so that parse_properties judges only the Tags it is given."""


def tags_problem(tags: Mapping[str, str]) -> str:
    """The handler's message (``Tags ...``) for the tags it would refuse; "" when it accepts them.

    A tag whose key or value is a token counts towards the limit, but its content is known only at deploy time.
    """
    given = [{"Key": key, "Value": value} for key, value in tags.items()]
    if len(given) < MAX_TAGS:  # the parser judges the count first, and the content only when the count is fine
        given = [tag for tag in given if not any(Token.is_unresolved(text) for text in tag.values())]
    try:
        parse_properties({"BackupId": _PARSED_BACKUP_ID, "Tags": given})
    except InvalidPropertiesError as error:
        return str(error).removeprefix("Property ")
    return ""


def _given(**options: Any) -> str:
    """The names of the options that are set (not None), joined with "and"; "" when none is."""
    return " and ".join(name for name, value in options.items() if value is not None)


def check_provider_options(
    *,
    role: Any,
    function_name: Any,
    log_group: Any,
    log_retention: Any,
    log_removal_policy: Any,
    log_group_encryption_key: Any,
    vpc: Any,
    vpc_subnets: Any,
    security_groups: Sequence[Any] | None,
    allow_public_subnet: Any,
    reserved_concurrent_executions: Any,
    tracing: Any,
    dead_letter_queue: Any,
) -> None:
    """Types of RestoreProvider's options; options that only apply to a new log group or to a VPC."""
    owner = "RestoreProvider"
    if role is not None and not _is_construct_with(role, "role_arn", "grant_principal"):
        raise _type_error(owner, "role", "an iam.IRole or None", role)
    if function_name is not None and not isinstance(function_name, str):
        raise _type_error(owner, "function_name", "a str or None", function_name)
    if log_group is not None and not _is_construct_with(log_group, "log_group_arn"):
        raise _type_error(owner, "log_group", "a logs.ILogGroup or None", log_group)
    if log_retention is not None and not isinstance(log_retention, logs.RetentionDays):
        raise _type_error(owner, "log_retention", "a logs.RetentionDays or None", log_retention)
    if log_removal_policy is not None and not isinstance(log_removal_policy, RemovalPolicy):
        raise _type_error(owner, "log_removal_policy", "a RemovalPolicy or None", log_removal_policy)
    if log_group_encryption_key is not None and not _is_construct_with(log_group_encryption_key, "key_arn"):
        raise _type_error(owner, "log_group_encryption_key", "a kms.IKey or None", log_group_encryption_key)
    if log_group is not None and (
        given := _given(
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
            log_group_encryption_key=log_group_encryption_key,
        )
    ):
        raise ValueError(
            f"{owner} {given}: only for a new log group (configure your log_group instead, or leave log_group out)"
        )
    if vpc is not None and not _is_construct_with(vpc, "vpc_id", "select_subnets"):
        raise _type_error(owner, "vpc", "an ec2.IVpc (e.g. ec2.Vpc.from_lookup(...)) or None", vpc)
    if vpc_subnets is not None and not hasattr(vpc_subnets, "subnet_type"):
        raise _type_error(owner, "vpc_subnets", "an ec2.SubnetSelection or None", vpc_subnets)
    if security_groups is not None and (
        isinstance(security_groups, str)
        or not all(_is_construct_with(group, "security_group_id") for group in security_groups)
    ):
        raise _type_error(owner, "security_groups", "a list of ec2.ISecurityGroup or None", security_groups)
    if not isinstance(allow_public_subnet, bool):
        raise _type_error(owner, "allow_public_subnet", "a bool", allow_public_subnet)
    if vpc is None and (
        given := _given(
            vpc_subnets=vpc_subnets, security_groups=security_groups, allow_public_subnet=allow_public_subnet or None
        )
    ):
        raise ValueError(f"{owner} {given}: only with vpc (pass the VPC too, or leave them out)")
    concurrency = reserved_concurrent_executions
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)):
        raise _type_error(owner, "reserved_concurrent_executions", "an int or None", concurrency)
    if concurrency is not None and concurrency < 1:
        raise ValueError(
            f"{owner} reserved_concurrent_executions must be at least 1 (0 stops the function), got {concurrency}"
        )
    if not isinstance(tracing, lambda_.Tracing):
        raise _type_error(owner, "tracing", "a lambda.Tracing", tracing)
    if dead_letter_queue is not None and not _is_construct_with(dead_letter_queue, "queue_arn"):
        raise _type_error(owner, "dead_letter_queue", "an sqs.IQueue or None", dead_letter_queue)
