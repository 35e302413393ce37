"""Who owns a backup after a Create or Update: record the restorer, inherit, take over, or adopt without owning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cloudhsm_backup_restore.backups import TAG_LIMIT_CODES, CloudHsmBackups
from cloudhsm_backup_restore.errors import CloudHsmCallError
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.ownership import (
    OWNER_TAG_KEY,
    Claimant,
    claims_in,
    record,
    room_for_record,
    tag_value,
    with_record,
)
from cloudhsm_backup_restore.properties import RestoreProperties
from cloudhsm_backup_restore.release import Request

logger = logging.getLogger(__name__)
Granted = Callable[[Callable[[], Any]], Any]


def with_tags(backups: CloudHsmBackups, backup: Any, granted: Granted) -> Any:
    """The backup with its TagList (ListTags when DescribeBackups carried none)."""
    if "TagList" in backup:
        return backup
    return dict(backup, TagList=granted(lambda: backups.tags(backup)))


def write_record(backups: CloudHsmBackups, backup: Any, claims: list[str], me: Claimant, granted: Granted) -> Any:
    """TagResource with the record; a backup with no room for one more tag is left unowned (logged).

    When DescribeBackups carried no TagList the count is unknown: TagResource itself says whether it fits.
    """
    if "TagList" in backup and not room_for_record(backup):
        log_event(logger, "ownership.not_recorded", BackupId=backup["BackupId"], reason="50 tags already")
        return backup
    value = record(claims, me)
    try:
        granted(lambda: backups.tag(backup["BackupId"], OWNER_TAG_KEY, value))
    except CloudHsmCallError as error:
        if error.code not in TAG_LIMIT_CODES:
            raise
        log_event(logger, "ownership.not_recorded", BackupId=backup["BackupId"], reason=error.aws_message)
        return backup
    return with_record(backup, value)


def claim_restored(backups: CloudHsmBackups, me: Claimant, backup: Any, granted: Granted) -> Any:
    """Record this resource as the sole owner of the backup it just restored (older claims ended with it)."""
    if claims_in(tag_value(backup, OWNER_TAG_KEY)) == [me.digest]:
        return backup  # recorded already (a duplicate delivery of this request)
    log_event(logger, "ownership.restored", BackupId=backup["BackupId"], owner=me.label)
    return write_record(backups, backup, [me.digest], me, granted)


def settle_ownership(
    backups: CloudHsmBackups, props: RestoreProperties, request: Request, me: Claimant, backup: Any, *, granted: Granted
) -> Any:
    """For a backup this operation did not restore: keep, inherit, take over, or adopt without owning."""
    backup = with_tags(backups, backup, granted)
    claims = claims_in(tag_value(backup, OWNER_TAG_KEY))
    if claims is None:
        if request.upgrades(props):
            log_event(logger, "ownership.inherited", BackupId=props.backup_id, previous=request.physical_id)
            return write_record(backups, backup, [me.digest], me, granted)
        log_event(
            logger,
            "backup.adopted",
            BackupId=props.backup_id,
            reason="READY before this resource and owned by none: its Delete will retain it",
        )
        return backup
    if me.digest in claims:
        return backup
    log_event(logger, "ownership.taken_over", BackupId=props.backup_id, previous=claims[0], owner=me.label)
    return write_record(backups, backup, [me.digest, *claims], me, granted)
