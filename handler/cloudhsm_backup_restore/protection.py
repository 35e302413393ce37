"""Keep a restored backup restored: NeverExpires after the restore, restore again when deleted again, undo on failure.

The retention-policy race (CloudHSM User Guide, "Managing backup retention"): the service purges a cluster's
backups older than its BackupRetentionPolicy, and a restored old backup is still old, so it can be purged again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from cloudhsm_backup_restore.attributes import as_attribute
from cloudhsm_backup_restore.backups import INVALID_REQUEST, BackupState, CloudHsmBackups, state_of
from cloudhsm_backup_restore.errors import BackupRestoreError, CloudHsmCallError
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.ownership import OWNER_TAG_KEY, Claimant, claims_in, tag_value
from cloudhsm_backup_restore.properties import RestoreProperties

logger = logging.getLogger(__name__)
Granted = Callable[[Callable[[], Any]], Any]
Reclaim = Callable[[Any], Any] | None

MEMO_RESTORED = "Restored"
"""Kept in crhelper's Data across polls: "true" when this operation restored the backup."""
MEMO_DELETE_TIMESTAMP = "RestoredFromDeleteTimestamp"
"""The DeleteTimestamp the backup had when this operation restored it: a different one later means the
backup was deleted again (e.g. purged by the retention policy) and is restored again."""
MEMO_RECORD = "OwnershipRecord"
"""Kept across polls: "deferred" when TagResource refused a backup still restoring (written once READY)."""
PROTECT_ATTEMPTS = 3


def protect(
    backups: CloudHsmBackups,
    props: RestoreProperties,
    backup: Any,
    *,
    restored: bool,
    granted: Granted,
    reclaim: Reclaim = None,
) -> Any:
    """NeverExpires as asked, or true for a backup this resource restored; restore again if purged meanwhile.

    ``reclaim`` re-records the owner after such a restore, should the deletion have taken the tag with it
    (whether tags survive a deletion is not documented).
    """
    wanted = props.never_expires if props.never_expires is not None else (True if restored else None)
    for _ in range(PROTECT_ATTEMPTS):
        if restored and state_of(backup) == BackupState.PENDING_DELETION:
            log_event(logger, "backup.deleted_again", BackupId=props.backup_id)
            backup = _restore_again(backups, props, granted, reclaim)
        if wanted is None or backup.get("NeverExpires") is wanted:
            if state_of(backup) == BackupState.READY:
                return backup
            continue
        try:
            backup = _set_never_expires(backups, props.backup_id, wanted, granted)
        except CloudHsmCallError as error:
            if error.code != INVALID_REQUEST or not restored:
                raise
            backup = backups.require(props.backup_id)  # refused: deleted again in between?
            if state_of(backup) != BackupState.PENDING_DELETION:
                raise
    if state_of(backup) == BackupState.READY:
        return backup
    raise BackupRestoreError(
        f"Backup {backups.where(props.backup_id)} went back to {state_of(backup)} each time it was restored "
        "(the cluster's backup retention policy?); set NeverExpires true or extend the policy"
    )


def protect_at_once(backups: CloudHsmBackups, props: RestoreProperties, backup: Any, granted: Granted) -> Any:
    """Right after RestoreBackup, before any wait: a restore still under way can be purged the moment it is READY.

    Whether the service accepts ModifyBackupAttributes on a backup still restoring is not documented: a refusal
    just defers the protection until READY (``protect``).
    """
    wanted = True if props.never_expires is None else props.never_expires
    if state_of(backup) == BackupState.READY or backup.get("NeverExpires") is wanted:
        return backup  # READY: ``protect`` does it now, with the purged-meanwhile handling
    try:
        return _set_never_expires(backups, props.backup_id, wanted, granted)
    except CloudHsmCallError as error:
        if error.code != INVALID_REQUEST:
            raise
        log_event(logger, "protection.deferred", BackupId=props.backup_id, BackupState=state_of(backup))
        return backup


def _set_never_expires(backups: CloudHsmBackups, backup_id: str, never_expires: bool, granted: Granted) -> Any:
    return granted(lambda: backups.set_never_expires(backup_id, never_expires))


def revive(
    backups: CloudHsmBackups,
    props: RestoreProperties,
    backup: Any,
    memo: Mapping[str, str],
    granted: Granted,
    *,
    reclaim: Reclaim = None,
) -> Any:
    """A backup this operation restored that is PENDING_DELETION again (a new DeleteTimestamp): restore it."""
    if (
        memo.get(MEMO_RESTORED) != "true"
        or state_of(backup) != BackupState.PENDING_DELETION
        or as_attribute(backup.get("DeleteTimestamp")) == memo.get(MEMO_DELETE_TIMESTAMP)
    ):
        return backup
    log_event(logger, "backup.deleted_again", BackupId=props.backup_id)
    try:
        return _restore_again(backups, props, granted, reclaim)
    except CloudHsmCallError as error:
        if error.code != INVALID_REQUEST:
            raise
        return backup


def _restore_again(backups: CloudHsmBackups, props: RestoreProperties, granted: Granted, reclaim: Reclaim) -> Any:
    backup = granted(lambda: backups.restore(props.backup_id))
    return reclaim(backup) if reclaim is not None else backup


def undo(backups: CloudHsmBackups, props: RestoreProperties, granted: Granted, me: Claimant) -> None:
    """A Create or Update that restored the backup failed: return it to PENDING_DELETION (OnDelete Delete),
    unless another resource has claimed it since (a take-over): a backup in use by someone else stays READY."""
    try:
        current = backups.describe(props.backup_id)
        if current is None or state_of(current) in (BackupState.PENDING_DELETION, BackupState.DELETED):
            return
        claims = claims_in(tag_value({"TagList": granted(lambda: backups.tags(current))}, OWNER_TAG_KEY))
        if claims is not None and claims != [me.digest]:
            log_event(logger, "failure.restore_kept", BackupId=props.backup_id, reason="claimed by another resource")
            return
        granted(lambda: backups.delete(props.backup_id))
        log_event(logger, "failure.restore_undone", BackupId=props.backup_id)
    except BackupRestoreError as error:
        log_event(logger, "failure.restore_not_undone", BackupId=props.backup_id, error=str(error)[:200])
