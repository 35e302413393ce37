"""Per-backup CloudHSM grants packed into customer managed policies that stay within IAM's quotas.

IAM quotas (IAM User Guide, "IAM and AWS STS quotas"; whitespace is not counted): a managed policy holds
at most 6,144 characters; a role has at most 10 managed policies attached by default (20 after a quota
increase); a role's inline policies together hold at most 10,240 characters. The provider role has no
inline policy at all (NIST 800-53 / HIPAA ``IAMNoInlinePolicy``), so only the first two apply.

Every backup ARN is costed at its longest possible rendering (partition ``aws-us-gov``, a 16-character
region unless the stack's region is a literal, a 12-digit account, a 23-character backup id), so a chunk's
capacity does not depend on which backups it holds. The provider places each backup in one of a fixed number
of chunks by a hash of its construct path (``RestoreProvider._place``), so adding, removing or editing one
backup changes only its own chunk.

A chunk's ``ManagedPolicyName`` carries a digest of its content (and, for a backup id or region given
as a token, the token itself). ``ManagedPolicyName`` is immutable (CloudFormation: "Update requires:
Replacement"), so any change to a chunk *replaces* the policy: the new one is created before the custom
resources that depend on it are updated, and the old one is deleted in the cleanup phase only after the
old custom resources (which depend on it) were deleted. A backup replaced by a stack update therefore
keeps its old grant, e.g. ``DeleteBackup`` for ``OnDelete.DELETE``, until its cleanup Delete is done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Fn, Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

MANAGED_POLICY_CHARACTERS = 6144
"""IAM: maximum size of a managed policy document (non-whitespace characters)."""
ROLE_INLINE_CHARACTERS = 10240
"""IAM: maximum size of all inline policies of one role together (non-whitespace characters)."""
DEFAULT_MANAGED_POLICIES_PER_ROLE = 10
"""IAM: managed policies attachable to one role by default (adjustable to MAX_MANAGED_POLICIES_PER_ROLE)."""
MAX_MANAGED_POLICIES_PER_ROLE = 20
POLICY_NAME_CHARACTERS = 128

LONGEST_PARTITION = len("aws-us-gov")
LONGEST_REGION = 16
"""Longest region name assumed for a token region (the longest today, e.g. ap-southeast-5, has 14)."""
ACCOUNT_DIGITS = 12
LONGEST_BACKUP_ID = len("backup-") + 16
_DOCUMENT_OVERHEAD = len('{"Version":"2012-10-17","Statement":[]}')


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


@dataclass
class BackupPolicyChunk:
    """One managed policy: one statement per distinct action set, the backup ARNs as its resources."""

    policy: iam.CfnManagedPolicy
    provider_id: str
    statements: dict[tuple[str, ...], iam.PolicyStatement] = field(default_factory=dict)
    used: int = _DOCUMENT_OVERHEAD
    fingerprint: list[Any] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def room_for(self, actions: Sequence[str], cost: int) -> bool:
        """Whether one more ARN with ``actions`` fits under the managed policy size limit."""
        extra = cost if tuple(actions) in self.statements else cost + statement_cost(actions)
        return self.used + extra <= MANAGED_POLICY_CHARACTERS

    def add(self, stack: Stack, actions: Sequence[str], arn: str, cost: int) -> None:
        """Grant ``actions`` on ``arn`` in this chunk."""
        key = tuple(actions)
        if key not in self.statements:
            self.used += statement_cost(actions)
            self.statements[key] = iam.PolicyStatement(actions=list(actions), resources=[])
            document = self.policy.policy_document
            assert isinstance(document, iam.PolicyDocument)
            document.add_statements(self.statements[key])
        self.statements[key].add_resources(arn)
        self.used += cost
        self.fingerprint.append([list(key), stack.resolve(arn)])
        self.policy.managed_policy_name = self.name()

    def name(self) -> str:
        """``cloudhsm-restore-<provider id>-<digest of the content>[-<token parts>]``: changes with the content."""
        digest = hashlib.sha256(json.dumps(self.fingerprint, sort_keys=True).encode()).hexdigest()[:16]
        parts: list[str] = ["cloudhsm-restore-", self.provider_id, "-", digest]
        for token in self.tokens:
            parts += ["-", token]
        return Fn.join("", parts)


def new_chunk(
    scope: Construct, construct_id: str, *, role: iam.IRole, provider_id: str, description: str
) -> BackupPolicyChunk:
    """An empty chunk: a customer managed policy attached to ``role``, named by its content at synth."""
    policy = iam.CfnManagedPolicy(
        scope,
        construct_id,
        policy_document=iam.PolicyDocument(),
        roles=[role.role_name],
        description=description,
    )
    return BackupPolicyChunk(policy=policy, provider_id=provider_id)


def token_parts(*values: str | None) -> list[str]:
    """The values among ``values`` that are tokens (they go into the policy name as they are)."""
    return [value for value in values if value is not None and Token.is_unresolved(value)]


class BackupGrants:
    """The per-backup managed policies of one role: hash-placed shared policies, and one per token backup."""

    def __init__(
        self, scope: Construct, *, role: iam.IRole, provider_id: str, own_policies: int, quota: int, headroom: int
    ) -> None:
        self._scope = scope
        self._role = role
        self._provider_id = provider_id
        self._own_policies = own_policies
        self.quota = quota
        """Managed policies the role may hold (IAM quota)."""
        self._headroom = headroom
        self._bucket_count = quota - headroom - own_policies
        """Shared policies at most: a literal backup's home is one of them, by a hash of its construct path."""
        self._buckets: dict[int, BackupPolicyChunk] = {}
        self._token_chunks: list[BackupPolicyChunk] = []

    def _can_add_policy(self) -> bool:
        # The headroom stays free: a replaced backup policy is attached before the old one is detached.
        count = self._own_policies + len(self._buckets) + len(self._token_chunks)
        return count < self.quota - self._headroom

    def _place(self, key: str, actions: Sequence[str], cost: int) -> int | None:
        """A literal backup's bucket: its home (a hash of ``key``) or, when that is full, the next with room.

        The home depends only on the backup's construct path, so adding, removing or editing one backup
        changes (and replaces) only its own policy, unless buckets are full enough to spill over.
        """
        home = int(hashlib.sha256(key.encode()).hexdigest(), 16) % self._bucket_count
        for step in range(self._bucket_count):
            bucket = (home + step) % self._bucket_count
            chunk = self._buckets.get(bucket)
            if (chunk is None and self._can_add_policy()) or (chunk is not None and chunk.room_for(actions, cost)):
                return bucket
        return None

    def has_room(self, actions: Sequence[str], cost: int, *, key: str | None) -> bool:
        """Whether one more backup fits (``key`` None: a token backup, which needs a policy of its own)."""
        if key is None:
            return self._can_add_policy()
        return self._place(key, actions, cost) is not None

    def grant(
        self, *, key: str | None, actions: Sequence[str], backup_arn: str, cost: int, tokens: Sequence[str]
    ) -> iam.CfnManagedPolicy:
        """Add the grant (has_room must be True); returns the policy holding it."""
        description = "CloudHSM backups restored by Custom::CloudHsmBackupRestore (cloudhsm-backup-restore)"
        if key is None:
            chunk = new_chunk(
                self._scope,
                f"TokenBackupPolicy{len(self._token_chunks) + 1}",
                role=self._role,
                provider_id=self._provider_id,
                description=description,
            )
            chunk.tokens.extend(tokens)
            self._token_chunks.append(chunk)
        else:
            bucket = self._place(key, actions, cost)
            if bucket is None:
                raise ValueError(f"no backup policy has room for {key}")
            if bucket not in self._buckets:
                self._buckets[bucket] = new_chunk(
                    self._scope,
                    f"BackupPolicy{bucket + 1}",
                    role=self._role,
                    provider_id=self._provider_id,
                    description=description,
                )
            chunk = self._buckets[bucket]
        chunk.add(Stack.of(self._scope), actions, backup_arn, cost)
        return chunk.policy

    @property
    def policies(self) -> list[iam.CfnManagedPolicy]:
        """The backup policies: shared ones by bucket, then the token backups' own."""
        return [self._buckets[b].policy for b in sorted(self._buckets)] + [c.policy for c in self._token_chunks]
