"""Per-backup CloudHSM grants in customer managed policies that are updated in place, never replaced.

The invariant: **no edit of any set of backups can make a stack update exceed an IAM quota.** IAM quotas (IAM
User Guide, "IAM and AWS STS quotas"; whitespace is not counted): a managed policy holds at most 6,144 characters,
a role has at most 10 managed policies attached by default, a role's inline policies hold at most 10,240
characters together.

CloudFormation creates a replacing resource before it deletes the old one (cleanup phase), so a policy that is
*replaced* counts twice during an update. The backup policies are therefore never replaced: they have stable
logical ids (``BackupPolicy1`` ... ``BackupPolicyN``), no ``ManagedPolicyName`` and a constant description, so any
change of their content is an in-place update (``PolicyDocument``: "Update requires: No interruption"). During an
update the role holds the union of the old and the new slots, which is the larger of the two, never their sum.

The grants a backup needs while it is in the template (``RestoreBackup`` first of all) are listed by ARN, packed
first-fit into the fewest slots. A Delete that CloudFormation sends in the cleanup phase, for a backup removed
from the template or replaced, runs after the slots were updated and no longer finds its ARN there. What it needs
(``DeleteBackup``, the owner tag) is granted by ``owned_backups_statement`` instead: on any backup carrying the
ownership tag, a condition the Service Authorization Reference supports for every CloudHSM backup action
(resource type ``backup``, condition key ``aws:ResourceTag/${TagKey}``:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudhsm.html).

Every ARN is costed at its longest rendering (the longest partition aws-cdk-lib knows, a 16-character region
unless the stack's region is a literal, a 12-digit account, a 23-character backup id, the longest the
pattern allows), so a literal, an env-agnostic stack and a token cost the same and a slot never overflows
when CloudFormation resolves it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.region_info import RegionInfo
from cloudhsm_backup_restore_pipeline.contract import DELETE_ACTIONS, OWNER_TAG_KEY, OWNERSHIP_ACTIONS
from constructs import Construct

MANAGED_POLICY_CHARACTERS = 6144
"""IAM: maximum size of a managed policy document (non-whitespace characters)."""
ROLE_INLINE_CHARACTERS = 10240
"""IAM: maximum size of all inline policies of one role together (non-whitespace characters)."""
MANAGED_POLICIES_PER_ROLE = 10
"""IAM: managed policies attachable to one role by default (the quota can only be raised)."""

LONGEST_PARTITION = max(len(region.partition or "") for region in RegionInfo.regions)
"""The longest partition aws-cdk-lib knows (aws-us-gov)."""
LONGEST_REGION = max(16, *(len(region.name) for region in RegionInfo.regions))
"""Longest region name assumed for a token region (the longest known today, e.g. eusc-de-east-1, has 14)."""
ACCOUNT_DIGITS = 12
LONGEST_BACKUP_ID = len("backup-") + 16
_DOCUMENT_OVERHEAD = len('{"Version":"2012-10-17","Statement":[]}')

OWNED_BACKUP_ACTIONS = (*DELETE_ACTIONS, *OWNERSHIP_ACTIONS)
"""What a Delete may call on a backup it owns: DeleteBackup (OnDelete Delete), and reading, handing back or
removing the owner tag. A Delete of a resource that left the template runs after its ARN left the slots."""


def arn_cost(*, partition: str | None, region: str | None) -> int:
    """Characters one backup ARN can take in a policy (quotes and separating comma included)."""
    partition_length = LONGEST_PARTITION if partition is None else len(partition)
    region_length = LONGEST_REGION if region is None else len(region)
    arn = 4 + partition_length + len(":cloudhsm:") + region_length + 1 + ACCOUNT_DIGITS + len(":backup/")
    return arn + LONGEST_BACKUP_ID + 3


def statement_cost(actions: Sequence[str]) -> int:
    """Characters of one Allow statement with ``actions`` and an empty resource list, plus its comma."""
    empty = {"Action": list(actions), "Effect": "Allow", "Resource": []}
    return len(json.dumps(empty, separators=(",", ":"))) + 1


def owned_backups_statement(scope: Construct) -> iam.PolicyStatement:
    """OWNED_BACKUP_ACTIONS on the account's backups (any region) that carry the ownership tag ``OWNER_TAG_KEY``.

    The content is the same for any set of backups, so no edit changes it. The handler's ownership record
    decides which Delete may delete; IAM keeps the function away from every backup this project never restored.
    """
    return iam.PolicyStatement(
        sid="OwnedBackups",
        actions=list(OWNED_BACKUP_ACTIONS),
        resources=[owned_backups_arn(scope)],
        conditions={"Null": {f"aws:ResourceTag/{OWNER_TAG_KEY}": "false"}},
    )


def owned_backups_arn(scope: Construct) -> str:
    """``arn:<partition>:cloudhsm:*:<account>:backup/*``: backups of any region of the stack's account."""
    return Stack.of(scope).format_arn(
        service="cloudhsm", region="*", resource="backup", resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )


SLOT_DESCRIPTION = "CloudHSM backups restored by Custom::CloudHsmBackupRestore (cloudhsm-backup-restore)"
"""Constant: a Description change would replace the policy (CloudFormation: "Update requires: Replacement")."""


@dataclass
class _Slot:
    """One backup policy: one statement per distinct action set, the backup ARNs as its resources."""

    policy: iam.ManagedPolicy
    statements: dict[tuple[str, ...], iam.PolicyStatement] = field(default_factory=dict)
    used: int = _DOCUMENT_OVERHEAD

    def room_for(self, actions: Sequence[str], cost: int) -> bool:
        extra = cost if tuple(actions) in self.statements else cost + statement_cost(actions)
        return self.used + extra <= MANAGED_POLICY_CHARACTERS

    def add(self, actions: Sequence[str], arn: str, cost: int) -> None:
        key = tuple(actions)
        if key not in self.statements:
            self.used += statement_cost(actions)
            self.statements[key] = iam.PolicyStatement(actions=list(actions), resources=[])
            self.policy.add_statements(self.statements[key])
        self.statements[key].add_resources(arn)
        self.used += cost


class BackupGrants:
    """The backup slots of one role: at most ``slots`` managed policies, filled first-fit in construction order."""

    def __init__(self, scope: Construct, *, role: iam.IRole, slots: int) -> None:
        self._scope = scope
        self._role = role
        self.slots = slots
        """How many backup policies the role may hold besides the provider's own."""
        self._slots: list[_Slot] = []

    def grant(self, actions: Sequence[str], backup_arn: str, cost: int) -> iam.ManagedPolicy:
        """Add ``actions`` on ``backup_arn`` to the first slot with room; returns the policy holding it."""
        slot = next((slot for slot in self._slots if slot.room_for(actions, cost)), None)
        if slot is None:
            if len(self._slots) == self.slots:
                raise ValueError(
                    f"{self._scope.node.path} has no room for another backup: its {self.slots} backup policies "
                    f"(IAM: {MANAGED_POLICY_CHARACTERS} characters each) are full. Create another RestoreProvider "
                    "and pass it as provider="
                )
            policy = iam.ManagedPolicy(
                self._scope,
                f"BackupPolicy{len(self._slots) + 1}",
                roles=[self._role],
                description=SLOT_DESCRIPTION,
            )
            slot = _Slot(policy)
            self._slots.append(slot)
        slot.add(actions, backup_arn, cost)
        return slot.policy

    @property
    def policies(self) -> list[iam.ManagedPolicy]:
        """The backup policies, in slot order."""
        return [slot.policy for slot in self._slots]
