"""Per-backup CloudHSM grants packed into customer managed policies that stay within IAM's quotas.

IAM quotas (IAM User Guide, "IAM and AWS STS quotas"; whitespace is not counted): a managed policy holds
at most 6,144 characters; a role has at most 10 managed policies attached by default (20 after a quota
increase); a role's inline policies together hold at most 10,240 characters. The provider role has no
inline policy at all (NIST 800-53 / HIPAA ``IAMNoInlinePolicy``), so only the first two apply.

Every backup ARN is costed at its longest possible rendering (partition ``aws-us-gov``, a 16-character
region unless the region is a literal, a 12-digit account, a 23-character backup id), so a chunk's
capacity does not depend on which backups it holds and changing one backup never moves another.

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
