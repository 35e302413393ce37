"""RestoredBackup: a CloudHSM backup brought back from PENDING_DELETION, READY when the resource is."""

from __future__ import annotations

import jsii
from aws_cdk import (
    Annotations,
    ArnFormat,
    CfnDeletionPolicy,
    CfnResource,
    Duration,
    ITaggable,
    RemovalPolicy,
    Stack,
    TagManager,
    TagType,
    Token,
)
from cloudhsm_backup_restore.attributes import ATTRIBUTE_NAMES, TAG_ATTRIBUTE_PREFIX
from cloudhsm_backup_restore.properties import OnDelete
from cloudhsm_backup_restore_pipeline.contract import RESOURCE_TYPE, backup_actions
from constructs import Construct, IValidation

from cloudhsm_backup_restore_cdk import validation
from cloudhsm_backup_restore_cdk.grants import arn_cost
from cloudhsm_backup_restore_cdk.provider import RestoreProvider, stack_registry

DEFAULT_SERVICE_TIMEOUT = Duration.minutes(60)
"""CloudFormation's own maximum ServiceTimeout: a restore normally takes minutes, waiting longer fails."""
DUPLICATE_BACKUP_WARNING = "@cloudhsm-backup-restore/cdk:duplicateBackup"
RETAINED_WARNING = "@cloudhsm-backup-restore/cdk:deletionPolicyRetain"


@jsii.implements(ITaggable)
class RestoredBackup(Construct):
    """A deleted (PENDING_DELETION) CloudHSM backup, restored on create and READY when the resource is.

    RestoredBackups share a provider Lambda (``RestoreProvider``): the stack's default one (the first
    RestoreProvider created in the stack, or one with default options), or the one passed as ``provider``. Each
    backup's grants (only the CloudHSM actions its options need, on its own ARN) go into the provider role's
    customer managed policies, which a stack update changes in place: no edit can exceed an IAM quota.

    The attributes (``backup_arn``, ``backup_state``, ...) are ``Fn::GetAtt`` string tokens; AWS fields the
    backup lacks (e.g. ``copy_timestamp`` of a backup that was never copied) resolve to "".

    Not an aws-cdk-lib ``Resource``: its deletion behaviour is ``removal_policy``, carried out by the provider's
    Delete; a CloudFormation ``DeletionPolicy: Retain`` (``apply_removal_policy``) would skip that Delete.
    The CloudFormation resource is ``backup.resource`` (also ``backup.node.default_child``).

    Taggable: ``Tags.of(backup)`` (or of any scope above it, the stack included) renders into the resource's
    ``Tags`` property, which the provider applies to the restored backup; a tag the handler would refuse (an
    ``aws:`` or ``cloudhsm-backup-restore:`` key, more than 49 tags, characters CloudHSM refuses) fails synth.

    Example::

        import aws_cdk as cdk
        from cloudhsm_backup_restore_cdk import RestoredBackup

        app = cdk.App()
        stack = cdk.Stack(app, "Restores", env=cdk.Environment(account="111122223333", region="eu-west-1"))
        backup = RestoredBackup(
            stack, "Backup", backup_id="backup-abcdefghijk", removal_policy=cdk.RemovalPolicy.DESTROY
        )
        cdk.CfnOutput(stack, "State", value=backup.backup_state)
        app.synth()
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        backup_id: str,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        never_expires: bool | None = None,
        region: str | None = None,
        service_timeout: Duration = DEFAULT_SERVICE_TIMEOUT,
        provider: RestoreProvider | None = None,
    ) -> None:
        """Restore ``backup_id``.

        :param backup_id: Id of the backup to restore (``backup-`` plus 11-16 of [2-7a-zA-Z]); it must be in
            PENDING_DELETION or already READY. Tokens (e.g. a CfnParameter) are accepted. Required.
        :param removal_policy: What removing the resource from the stack (or replacing it) does to the backup:
            ``RemovalPolicy.RETAIN`` leaves it READY, ``RemovalPolicy.DESTROY`` deletes it again (back to
            PENDING_DELETION); the template's ``OnDelete`` property. Default: ``RemovalPolicy.RETAIN``.
        :param never_expires: True exempts the backup from the cluster's backup retention policy, False
            removes the exemption. Default: None (the handler's default: a restored backup is exempted).
        :param region: Region of the backup, in the stack's partition; a token must resolve to a region name.
            Default: None (the stack's region).
        :param service_timeout: How long CloudFormation waits for the restore (the resource's ServiceTimeout),
            1 second to 60 minutes in whole seconds. Default: ``Duration.minutes(60)``.
        :param provider: The RestoreProvider (in the same stack) whose function serves this backup; VPC, logs,
            concurrency, tracing and the dead-letter queue are set there. Default: the stack's default provider.

        Invalid values raise TypeError/ValueError naming the option and what was expected.
        """
        super().__init__(scope, construct_id)
        backup_id = validation.check_backup_id(backup_id)
        self.on_delete = validation.check_removal_policy(removal_policy)
        """The template's OnDelete (Retain or Delete), from ``removal_policy``."""
        never_expires = validation.check_never_expires(never_expires)
        region = validation.check_region(self, region)
        service_timeout = validation.check_service_timeout(service_timeout)

        stack = Stack.of(self)
        if provider is None:
            provider = RestoreProvider._default_of(self)
        elif not isinstance(provider, RestoreProvider):
            raise TypeError(f"RestoredBackup provider must be a RestoreProvider or None, got {type(provider).__name__}")
        elif Stack.of(provider) is not stack:
            raise ValueError(
                f"RestoredBackup provider must be in the same stack as the backup ({stack.node.path}), "
                f"got one in {Stack.of(provider).node.path}"
            )
        self.provider = provider
        """The provider (role, log group, function) serving this backup."""
        self._warn_if_named_twice(backup_id, region)

        actions = backup_actions(on_delete=self.on_delete, never_expires=never_expires)
        partition = None if Token.is_unresolved(stack.partition) else stack.partition
        # An explicit region is costed at the longest region name, so changing it never moves other backups.
        stack_region = None if region is not None or Token.is_unresolved(stack.region) else stack.region
        # The ARN is built from the inputs (the backup_arn attribute only exists once the resource does).
        scoped_arn = stack.format_arn(
            service="cloudhsm",
            resource="backup",
            resource_name=backup_id,
            region=region,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        grants = provider._grant_backup(actions, scoped_arn, arn_cost(partition=partition, region=stack_region))

        self._tags = TagManager(TagType.KEY_VALUE, RESOURCE_TYPE, tag_property_name="Tags")
        properties: dict[str, object] = {
            "ServiceToken": provider.service_token,
            "ServiceTimeout": Token.as_string(service_timeout.to_seconds())
            if service_timeout.is_unresolved()
            else str(int(service_timeout.to_seconds())),
            "BackupId": backup_id,
            "OnDelete": self.on_delete.value,
        }
        if never_expires is not None:
            properties["NeverExpires"] = "true" if never_expires else "false"
        if region is not None:
            properties["Region"] = region
        # Resolved at synth, after the Tags aspects ran: absent while no tag is set, so untagged templates keep
        # their shape.
        properties["Tags"] = self._tags.rendered_tags
        self.resource = CfnResource(self, "Resource", type=RESOURCE_TYPE, properties=properties)
        """The CloudFormation resource (``Custom::CloudHsmBackupRestore``), the escape hatch."""
        # CloudFormation's Delete must run: it is what carries out removal_policy.
        self.resource.apply_removal_policy(RemovalPolicy.DESTROY)
        # The grants must exist before Create and outlive Delete: CloudFormation orders both by dependencies.
        self.resource.node.add_dependency(*grants)
        self.node.add_validation(_DeletionRuns(self))
        self.node.add_validation(_TagsAccepted(self))

    def _warn_if_named_twice(self, backup_id: str, region: str | None) -> None:
        stack = Stack.of(self)
        where = region if region is not None else stack.region
        if Token.is_unresolved(backup_id) or Token.is_unresolved(where):
            return
        first = stack_registry(self).backups.setdefault((backup_id, where), self.node.path)
        if first != self.node.path:
            Annotations.of(self).add_warning_v2(
                DUPLICATE_BACKUP_WARNING,
                f"{backup_id} is also restored by {first} in this stack: each resource's Delete acts on the same "
                "backup, and only the one that restored it owns it",
            )

    @property
    def tags(self) -> TagManager:
        """The tags ``Tags.of(...)`` set on this backup (ITaggable), rendered into the resource's ``Tags``."""
        return self._tags

    def _attribute(self, name: str) -> str:
        return self.resource.get_att(name).to_string()

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

        CloudFormation attributes are strings known only at deploy time, so this is no bool at synth, and
        CloudFormation allows no ``Fn::GetAtt`` in a Condition: pass it on as a string (an output, an
        environment variable, a parameter of another stack).
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


@jsii.implements(IValidation)
class _DeletionRuns:
    """Warns when a DESTROY backup's DeletionPolicy is no longer Delete (e.g. ``RemovalPolicies.of(stack).retain()``):
    CloudFormation then never sends the Delete, so the backup is never deleted again."""

    def __init__(self, backup: RestoredBackup) -> None:
        self._backup = backup

    def validate(self) -> list[str]:
        """Add the warning (this runs at synth, after aspects); no error."""
        options = self._backup.resource.cfn_options
        policies = {"DeletionPolicy": options.deletion_policy, "UpdateReplacePolicy": options.update_replace_policy}
        changed = [
            f"{name} {value.value.title().replace('_', '')}"
            for name, value in policies.items()
            if value not in (None, CfnDeletionPolicy.DELETE)
        ]
        if changed and self._backup.on_delete is OnDelete.DELETE:
            Annotations.of(self._backup).add_warning_v2(
                RETAINED_WARNING,
                f"{', '.join(changed)} (apply_removal_policy or RemovalPolicies) cancels removal_policy=DESTROY: "
                "CloudFormation will not send this resource's Delete, so the backup is never deleted again. Use "
                "removal_policy=RemovalPolicy.RETAIN on the RestoredBackup if that is what you want",
            )
        return []


@jsii.implements(IValidation)
class _TagsAccepted:
    """Fails synth on tags the handler would refuse at deploy time, naming ``Tags`` and the rule (the handler's
    own parser decides: one source for the rules)."""

    def __init__(self, backup: RestoredBackup) -> None:
        self._backup = backup

    def validate(self) -> list[str]:
        """The handler's message for the first tag it refuses; [] when the tags (or there are none) are fine."""
        tags = self._backup.tags.tag_values()
        problem = validation.tags_problem(tags)
        if not problem:
            return []
        return [
            f"RestoredBackup {problem}. The tag comes from Tags.of(...) on this backup or a scope above it: remove "
            f'it there, or keep it off this resource with exclude_resource_types=["{RESOURCE_TYPE}"]'
        ]
