"""RestoredBackup: a CloudHSM backup brought back from PENDING_DELETION, READY when the resource is."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aws_cdk import ArnFormat, CustomResource, Duration, Stack, Token
from aws_cdk import aws_ec2 as ec2
from cloudhsm_backup_restore.attributes import ATTRIBUTE_NAMES, TAG_ATTRIBUTE_PREFIX
from cloudhsm_backup_restore.properties import (
    BACKUP_ID_PATTERN,
    MAX_SERVICE_TIMEOUT,
    REGION_PATTERN,
    OnDelete,
)
from cloudhsm_backup_restore_pipeline.contract import RESOURCE_TYPE, backup_actions
from constructs import Construct

from cloudhsm_backup_restore_cdk.provider import RestoreProvider

DEFAULT_TIMEOUT = Duration.minutes(60)
"""CloudFormation's own maximum ServiceTimeout: a restore normally takes minutes, waiting longer fails."""


def _check_backup_id(backup_id: str) -> None:
    if Token.is_unresolved(backup_id):
        return
    if not BACKUP_ID_PATTERN.fullmatch(backup_id):
        raise ValueError(
            f"RestoredBackup backup_id must match {BACKUP_ID_PATTERN.pattern} (e.g. backup-abcdefghijk), "
            f"got {backup_id!r}"
        )


def _check_on_delete(on_delete: OnDelete | str) -> OnDelete:
    try:
        return OnDelete(on_delete)
    except ValueError:
        choices = ", ".join(f"OnDelete.{choice.name}" for choice in OnDelete)
        raise ValueError(f"RestoredBackup on_delete must be one of {choices}, got {on_delete!r}") from None


def _check_never_expires(never_expires: object) -> None:
    if never_expires is not None and not isinstance(never_expires, bool):
        raise TypeError(f"RestoredBackup never_expires must be True, False or None, got {never_expires!r}")


def _check_region(region: str | None) -> None:
    if region is None or Token.is_unresolved(region):
        return
    if not REGION_PATTERN.fullmatch(region):
        raise ValueError(
            f"RestoredBackup region must be an AWS region name like eu-west-1 (or None for the stack's "
            f"region), got {region!r}"
        )


def _check_timeout(timeout: Duration) -> None:
    if timeout.is_unresolved():
        return
    seconds = timeout.to_seconds(integral=False)
    if seconds < 1:
        raise ValueError(f"RestoredBackup timeout must be at least 1 second, got {timeout.to_human_string()}")
    if seconds > MAX_SERVICE_TIMEOUT:
        raise ValueError(
            f"RestoredBackup timeout must be at most {MAX_SERVICE_TIMEOUT // 60} minutes (CloudFormation's "
            f"limit for a custom resource), got {timeout.to_human_string()}"
        )
    if seconds != int(seconds):
        raise ValueError(f"RestoredBackup timeout must be a whole number of seconds, got {timeout.to_human_string()}")


def _check_placement(
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    security_groups: Sequence[ec2.ISecurityGroup] | None,
) -> None:
    if vpc is not None:
        return
    given = [name for name, value in (("vpc_subnets", vpc_subnets), ("security_groups", security_groups)) if value]
    if given:
        raise ValueError(f"RestoredBackup {' and '.join(given)} need vpc: pass the VPC too, or leave them out")


def _policy_id(backup_id: str, region: str | None) -> str:
    """Construct id of the backup's policy: it changes with the backup's identity.

    A new backup id or region makes CloudFormation replace the resource and delete the old one in the
    cleanup phase; a fresh policy (rather than an edited one) keeps the old backup's grant until then.
    """
    if Token.is_unresolved(backup_id) or (region is not None and Token.is_unresolved(region)):
        return "Permissions"
    digest = hashlib.sha256(f"{backup_id}|{region or ''}".encode()).hexdigest()[:8].upper()
    return f"Permissions{digest}"


class RestoredBackup(Construct):
    """A deleted (PENDING_DELETION) CloudHSM backup, restored on create and READY when the resource is.

    All RestoredBackups of a stack share one provider Lambda (``RestoreProvider``); each adds an IAM policy
    allowing only the CloudHSM actions its own options need, on its own backup's ARN. These policies count
    towards the provider role's 10,240-character inline policy quota: a few dozen backups per stack.

    The attributes (``backup_arn``, ``backup_state``, ...) are ``Fn::GetAtt`` string tokens; AWS fields the
    backup lacks (e.g. ``copy_timestamp`` of a backup that was never copied) resolve to "".
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        backup_id: str,
        on_delete: OnDelete = OnDelete.RETAIN,
        never_expires: bool | None = None,
        region: str | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> None:
        """Restore ``backup_id``.

        :param backup_id: Id of the backup to restore (``backup-`` plus 11-16 of [2-7a-zA-Z]); it must be in
            PENDING_DELETION or already READY. Tokens (e.g. a CfnParameter) are accepted. Required.
        :param on_delete: What removing the resource from the stack (or replacing it) does to the backup:
            ``OnDelete.RETAIN`` leaves it READY, ``OnDelete.DELETE`` deletes it again (back to
            PENDING_DELETION). Default: ``OnDelete.RETAIN``.
        :param never_expires: True exempts the backup from the cluster's backup retention policy, False
            removes the exemption. Default: None (the setting is left as it is and not managed).
        :param region: Region of the backup; a token must resolve to a region name (not "").
            Default: None (the stack's region).
        :param timeout: How long CloudFormation waits for the restore (the resource's ServiceTimeout),
            1 second to 60 minutes in whole seconds. Default: ``Duration.minutes(60)``.
        :param vpc: VPC to run the provider Lambda in; it then needs a route to the CloudHSM, EventBridge
            and Lambda APIs and to CloudFormation's S3 response URL (NAT or VPC endpoints).
            Default: None (not in a VPC).
        :param vpc_subnets: Subnets of ``vpc`` for the Lambda; only with ``vpc``. Default: CDK's default
            selection (the VPC's private subnets).
        :param security_groups: Security groups of the Lambda; only with ``vpc``. Default: one new group
            allowing all outbound traffic.

        The provider is shared, so every RestoredBackup of a stack must pass the same ``vpc``,
        ``vpc_subnets`` and ``security_groups``. Invalid values raise ValueError/TypeError naming the option.
        """
        super().__init__(scope, construct_id)
        _check_backup_id(backup_id)
        on_delete = _check_on_delete(on_delete)
        _check_never_expires(never_expires)
        _check_region(region)
        _check_timeout(timeout)
        _check_placement(vpc, vpc_subnets, security_groups)

        self.provider = RestoreProvider.of(self, vpc=vpc, vpc_subnets=vpc_subnets, security_groups=security_groups)
        """The stack's shared provider (role, log group, function)."""
        # The ARN is built from the inputs (the backup_arn attribute only exists once the resource does).
        scoped_arn = Stack.of(self).format_arn(
            service="cloudhsm",
            resource="backup",
            resource_name=backup_id,
            region=region,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.policy = self.provider.grant_backup(
            self,
            _policy_id(backup_id, region),
            backup_arn=scoped_arn,
            actions=backup_actions(on_delete=on_delete, never_expires=never_expires),
        )
        """This backup's own permissions on the provider role."""

        properties: dict[str, str] = {"BackupId": backup_id, "OnDelete": on_delete.value}
        if never_expires is not None:
            properties["NeverExpires"] = "true" if never_expires else "false"
        if region is not None:
            properties["Region"] = region
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties=properties,
            service_timeout=timeout,
        )
        """The underlying CustomResource (``Custom::CloudHsmBackupRestore``)."""
        # The grants must exist before Create and outlive Delete: CloudFormation orders both by dependencies.
        self.resource.node.add_dependency(self.policy, self.provider.invoke_permission_policy)

    def _attribute(self, name: str) -> str:
        return self.resource.get_att_string(name)

    @property
    def backup_id(self) -> str:
        """GetAtt BackupId: the restored backup's id."""
        return self._attribute("BackupId")

    @property
    def backup_arn(self) -> str:
        """GetAtt BackupArn."""
        return self._attribute("BackupArn")

    @property
    def backup_state(self) -> str:
        """GetAtt BackupState: READY once the resource exists."""
        return self._attribute("BackupState")

    @property
    def cluster_id(self) -> str:
        """GetAtt ClusterId: the cluster the backup was taken from."""
        return self._attribute("ClusterId")

    @property
    def create_timestamp(self) -> str:
        """GetAtt CreateTimestamp (ISO 8601, UTC)."""
        return self._attribute("CreateTimestamp")

    @property
    def copy_timestamp(self) -> str:
        """GetAtt CopyTimestamp (ISO 8601, UTC; "" unless the backup is a copy)."""
        return self._attribute("CopyTimestamp")

    @property
    def never_expires(self) -> str:
        """GetAtt NeverExpires: "true" or "false"."""
        return self._attribute("NeverExpires")

    @property
    def source_region(self) -> str:
        """GetAtt SourceRegion ("" unless the backup is a copy)."""
        return self._attribute("SourceRegion")

    @property
    def source_backup(self) -> str:
        """GetAtt SourceBackup ("" unless the backup is a copy)."""
        return self._attribute("SourceBackup")

    @property
    def source_cluster(self) -> str:
        """GetAtt SourceCluster ("" unless the backup is a copy)."""
        return self._attribute("SourceCluster")

    @property
    def delete_timestamp(self) -> str:
        """GetAtt DeleteTimestamp ("" once restored)."""
        return self._attribute("DeleteTimestamp")

    @property
    def hsm_type(self) -> str:
        """GetAtt HsmType."""
        return self._attribute("HsmType")

    @property
    def mode(self) -> str:
        """GetAtt Mode: FIPS or NON_FIPS."""
        return self._attribute("Mode")

    def get_tag(self, key: str) -> str:
        """GetAtt Tag.<key>: the value of the backup's tag ``key``.

        Tags that did not fit CloudFormation's 4 KB response are missing and fail the GetAtt at deploy time.
        """
        if not key:
            raise ValueError("RestoredBackup.get_tag key must be a non-empty tag key")
        return self._attribute(TAG_ATTRIBUTE_PREFIX + key)


ATTRIBUTE_PROPERTIES = {
    "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_"): name for name in ATTRIBUTE_NAMES
}
"""Python property -> GetAtt attribute name, for every attribute the handler returns."""
