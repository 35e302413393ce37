"""RestoredBackup: a CloudHSM backup brought back from PENDING_DELETION, READY when the resource is."""

from __future__ import annotations

from aws_cdk import ArnFormat, CustomResource, Duration, Stack, Token
from cloudhsm_backup_restore.attributes import ATTRIBUTE_NAMES, TAG_ATTRIBUTE_PREFIX
from cloudhsm_backup_restore.properties import OnDelete
from cloudhsm_backup_restore_pipeline.contract import RESOURCE_TYPE, backup_actions
from constructs import Construct

from cloudhsm_backup_restore_cdk import validation
from cloudhsm_backup_restore_cdk.grants import arn_cost, token_parts
from cloudhsm_backup_restore_cdk.provider import RestoreProvider

DEFAULT_TIMEOUT = Duration.minutes(60)
"""CloudFormation's own maximum ServiceTimeout: a restore normally takes minutes, waiting longer fails."""


class RestoredBackup(Construct):
    """A deleted (PENDING_DELETION) CloudHSM backup, restored on create and READY when the resource is.

    RestoredBackups share a provider Lambda (``RestoreProvider``): the stack's default one, or the one passed as
    ``provider``. Each backup's grants (only the CloudHSM actions its options need, on its own ARN) go into the
    provider role's customer managed policies, packed to stay within IAM's quotas at any count.

    The attributes (``backup_arn``, ``backup_state``, ...) are ``Fn::GetAtt`` string tokens; AWS fields the
    backup lacks (e.g. ``copy_timestamp`` of a backup that was never copied) resolve to "".
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        backup_id: str,
        on_delete: OnDelete | str = OnDelete.RETAIN,
        never_expires: bool | None = None,
        region: str | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
        provider: RestoreProvider | None = None,
    ) -> None:
        """Restore ``backup_id``.

        :param backup_id: Id of the backup to restore (``backup-`` plus 11-16 of [2-7a-zA-Z]); it must be in
            PENDING_DELETION or already READY. Tokens (e.g. a CfnParameter) are accepted. Required.
        :param on_delete: What removing the resource from the stack (or replacing it) does to the backup:
            ``OnDelete.RETAIN`` leaves it READY, ``OnDelete.DELETE`` deletes it again (back to PENDING_DELETION).
            The enum, or its name or value in any case ("delete"). Default: ``OnDelete.RETAIN``.
        :param never_expires: True exempts the backup from the cluster's backup retention policy, False
            removes the exemption. Default: None (a backup the resource restores is set to True, so the retention
            policy cannot purge it again; one it finds READY is left as it is).
        :param region: Region of the backup, in the stack's partition; a token must resolve to a region name.
            Default: None (the stack's region).
        :param timeout: How long CloudFormation waits for the restore (the resource's ServiceTimeout),
            1 second to 60 minutes in whole seconds. Default: ``Duration.minutes(60)``.
        :param provider: The RestoreProvider (in the same stack) whose function serves this backup; VPC, logs,
            concurrency, tracing and the dead-letter queue are set there. Default: the stack's default provider.

        Invalid values raise TypeError/ValueError naming the option and what was expected.
        """
        super().__init__(scope, construct_id)
        backup_id = validation.check_backup_id(backup_id)
        self.on_delete = validation.check_on_delete(on_delete)
        """The OnDelete this backup was configured with."""
        never_expires = validation.check_never_expires(never_expires)
        region = validation.check_region(self, region)
        timeout = validation.check_timeout(timeout)

        stack = Stack.of(self)
        actions = backup_actions(on_delete=self.on_delete, never_expires=never_expires)
        tokens = token_parts(backup_id, region)
        partition = None if Token.is_unresolved(stack.partition) else stack.partition
        # An explicit region is costed at the longest region name, so changing it never moves other backups.
        stack_region = None if region is not None or Token.is_unresolved(stack.region) else stack.region
        cost = arn_cost(partition=partition, region=stack_region)
        # Where the grant goes: a literal backup by its construct path (stable when its id changes), a token one alone.
        key = None if tokens else self.node.path
        if provider is None:
            provider = RestoreProvider.of(self, actions=actions, cost=cost, key=key)
        elif not isinstance(provider, RestoreProvider):
            raise TypeError(f"RestoredBackup provider must be a RestoreProvider or None, got {type(provider).__name__}")
        elif Stack.of(provider) is not stack:
            raise ValueError(
                f"RestoredBackup provider must be in the same stack as the backup ({stack.node.path}), "
                f"got one in {Stack.of(provider).node.path}"
            )
        self.provider = provider
        """The provider (role, log group, function) serving this backup."""
        # The ARN is built from the inputs (the backup_arn attribute only exists once the resource does).
        scoped_arn = stack.format_arn(
            service="cloudhsm",
            resource="backup",
            resource_name=backup_id,
            region=region,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.policy = provider.grant_backup(key=key, actions=actions, backup_arn=scoped_arn, cost=cost, tokens=tokens)
        """The customer managed policy holding this backup's grant (shared with other backups unless tokens)."""

        properties: dict[str, str] = {"BackupId": backup_id, "OnDelete": self.on_delete.value}
        if never_expires is not None:
            properties["NeverExpires"] = "true" if never_expires else "false"
        if region is not None:
            properties["Region"] = region
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties=properties,
            service_timeout=timeout,
        )
        """The underlying CustomResource (``Custom::CloudHsmBackupRestore``)."""
        # The grants must exist before Create and outlive Delete: CloudFormation orders both by dependencies.
        self.resource.node.add_dependency(self.policy, *provider.shared_grants)

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
        """GetAtt NeverExpires: a string token resolving to "true" or "false" (never a Python bool).

        CloudFormation attributes are strings, so this cannot be a bool at synth: compare it in the template,
        e.g. ``Fn.condition_equals(backup.never_expires, "true")``.
        """
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
        """GetAtt Tag.<key>: the value of the backup's tag ``key`` (1 to 128 characters).

        Tags that did not fit CloudFormation's 4 KB response are missing and fail the GetAtt at deploy time.
        """
        return self._attribute(TAG_ATTRIBUTE_PREFIX + validation.check_tag_key(key))


ATTRIBUTE_PROPERTIES = {
    "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_"): name for name in ATTRIBUTE_NAMES
}
"""Python property -> GetAtt attribute name, for every attribute the handler returns."""
