"""Who may delete a restored backup (I1): the ownership record, one backup tag (docs/lifecycle.md).

Its value is ``<owner>[+<previous>] [<restored at>] owner <stack name>/<logical id>``, the epoch second the owner
restored it when it did (a rename's take-over writes none); each token is ``<stack digest>.<digest of
stack, logical id and the backup's ARN>``, so two property sets naming the same ARN are the same resource. Tag values
allow letters, digits, spaces and ``_.:/=+-@`` up to 256 characters (botocore cloudhsmv2 model, shape TagValue).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from enum import Enum

from cloudhsm_backup_restore.backups import TAG_LIMIT_CODES, Backup, CloudHsmBackups
from cloudhsm_backup_restore.errors import BackupRestoreError, CloudHsmCallError
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.properties import MAX_TAGS, PROJECT_TAG_PREFIX, TAG_LIMITS

logger = logging.getLogger(__name__)

OWNER_TAG_KEY = PROJECT_TAG_PREFIX + "owner"


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Resource:
    """One custom resource as the record names it: its stack, its logical id and its backup's ARN."""

    stack_id: str
    logical_id: str
    arn: str

    @property
    def token(self) -> str:
        """``<stack digest>.<resource digest>``: stable, short, and comparable by stack."""
        return f"{_digest(self.stack_id, 6)}.{_digest(chr(10).join((self.stack_id, self.logical_id, self.arn)), 10)}"

    @property
    def label(self) -> str:
        """``<stack name>/<logical id>`` for operators reading the tag."""
        parts = self.stack_id.split("/")
        return f"{parts[1] if len(parts) > 2 else self.stack_id}/{self.logical_id}"

    def same_stack(self, token: str) -> bool:
        """Whether the record token names a resource of this resource's stack."""
        return token.split(".", 1)[0] == self.token.split(".", 1)[0]


def _record(backup: Backup | None) -> str | None:
    """The record tag's value; None when the backup carries none."""
    tags = backup.get("TagList") or [] if backup else []
    return next((str(tag.get("Value", "")) for tag in tags if tag.get("Key") == OWNER_TAG_KEY), None)


def tokens_of(backup: Backup | None) -> list[str] | None:
    """The record's tokens (owner first); None when the backup carries no record."""
    record = _record(backup)
    return None if record is None else [token for token in record.split(" ", 1)[0].split("+") if token]


class OnDeleteVerdict(Enum):
    """What a resource's Delete may do to the backup, by the record."""

    HONOUR = "honour"  # the sole owner: OnDelete decides
    HAND_BACK = "hand_back"  # a rename's new logical id, deleted while the previous resource exists: give it back
    WITHDRAW = "withdraw"  # a rename's previous resource (its cleanup): the new logical id keeps it
    RETAIN = "retain"  # not restored or owned by this resource: retained, record untouched


def verdict_for(me: Resource, tokens: list[str] | None) -> OnDeleteVerdict:
    """What ``me``'s Delete may do (I1: only the restorer, or the new logical id of a same-stack rename)."""
    if not tokens or me.token not in tokens:
        return OnDeleteVerdict.RETAIN
    if tokens[0] != me.token:
        return OnDeleteVerdict.WITHDRAW
    return OnDeleteVerdict.HAND_BACK if len(tokens) > 1 else OnDeleteVerdict.HONOUR


class OwnershipRecord:
    """Writes the record through the backups' client, with the resource's own ``tags`` (its Tags) in the same call."""

    def __init__(self, backups: CloudHsmBackups, tags: tuple[tuple[str, str], ...] = ()) -> None:
        self.backups = backups
        self.tags = dict(tags)

    def write(self, backup: Backup, tokens: list[str], label: str) -> Backup:
        """TagResource with the record; a backup with no room for one more tag is left unowned (logged)."""
        backup_id = backup["BackupId"]
        tags = backup.get("TagList")
        if tags is not None and tokens_of(backup) is None and len(tags) >= MAX_TAGS:
            log_event(logger, "ownership.not_recorded", BackupId=backup_id, reason="50 tags already")
            return backup
        put = {**self.tags, OWNER_TAG_KEY: ("+".join(tokens[:2]) + " " + label)[: TAG_LIMITS["Value"][1]]}
        try:
            return self.backups.tag(backup, put)
        except CloudHsmCallError as error:
            if error.code not in TAG_LIMIT_CODES:
                raise
            log_event(logger, "ownership.not_recorded", BackupId=backup_id, reason=error.aws_message)
            return backup

    def refuse_too_many(self, backup: Backup) -> None:
        """Tags that would take the backup past 50 tags fail before anything is done, not after a restore."""
        keys = {str(tag.get("Key")) for tag in backup.get("TagList") or []} | {OWNER_TAG_KEY, *self.tags}
        if self.tags and len(keys) > MAX_TAGS:
            raise BackupRestoreError(
                f"Backup {self.backups.where(backup['BackupId'])} would have {len(keys)} tags with these Tags and the "
                f"ownership record; CloudHSM allows {MAX_TAGS} per backup: remove some (nothing was done)"
            )

    def apply_tags(self, backup: Backup, previous: tuple[tuple[str, str], ...]) -> Backup:
        """The Tags on a READY backup: TagResource what is missing or different (nothing when the record's write carried
        them), UntagResource what ``previous`` (the same backup's OldResourceProperties) set, these no longer do, and
        nobody changed since. Nothing else removes them (docs/lifecycle.md, "Tags")."""
        if not self.tags and not previous:
            return backup
        backup = self.backups.with_tags(backup)
        current = {tag["Key"]: tag["Value"] for tag in backup.get("TagList") or []}
        put = {key: value for key, value in self.tags.items() if current.get(key) != value}
        removed = [key for key, value in previous if key not in self.tags and current.get(key) == value]
        backup = self.backups.tag(backup, put) if put else backup
        return self.backups.untag(backup, removed) if removed else backup

    def record_restorer(self, backup: Backup, me: Resource) -> Backup:
        """This resource restored the backup: it alone owns it now (older records ended with the deletion)."""
        if tokens_of(backup) == [me.token]:
            return backup
        log_event(logger, "ownership.restored", BackupId=backup["BackupId"], owner=me.label)
        return self.write(backup, [me.token], f"{int(time.time())} owner {me.label}")

    def settle(self, backup: Backup, me: Resource, signed_at: float | None) -> Backup:
        """A backup this operation did not restore: keep it, take it over in a same-stack rename, or adopt it
        without owning it (its Delete will retain it). A request signed (``signed_at``) before the owner restored the
        backup is no rename's Create: a late delivery, or a sibling made in parallel; it adopts (I1, I3)."""
        backup = self.backups.with_tags(backup)
        tokens = tokens_of(backup)
        if tokens and me.token in tokens:
            return backup
        fields = (_record(backup) or "").split(" ")  # when the owner restored it, if the record says
        restored = float(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
        stale = signed_at is not None and restored is not None and signed_at < restored
        if tokens and me.same_stack(tokens[0]) and not stale:
            log_event(logger, "ownership.renamed", BackupId=backup["BackupId"], previous=tokens[0], owner=me.label)
            return self.write(backup, [me.token, tokens[0]], "owner " + me.label)
        log_event(logger, "backup.adopted", BackupId=backup["BackupId"], reason="not restored by this resource")
        return backup

    def release(self, backup: Backup, me: Resource, verdict: OnDeleteVerdict, tokens: list[str]) -> None:
        """Rewrite the record for a Delete that does not delete: hand back, withdraw, or remove (Retain)."""
        backup_id = backup["BackupId"]
        try:
            if verdict is OnDeleteVerdict.HAND_BACK:
                self.write(backup, tokens[1:], "returned-by " + me.label)
            elif verdict is OnDeleteVerdict.WITHDRAW:
                self.write(backup, tokens[:1], (_record(backup) or "").partition(" ")[2])
            else:
                self.backups.untag(backup, [OWNER_TAG_KEY])
        except CloudHsmCallError as error:  # a stale record only errs on the side of retaining
            log_event(logger, "ownership.not_updated", BackupId=backup_id, error=str(error)[:200])
        log_event(logger, f"ownership.{verdict.value}", BackupId=backup_id)
