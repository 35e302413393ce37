"""Delete: what a resource may do to its backup when CloudFormation deletes it, by the ownership record."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cloudhsm_backup_restore.backups import BackupState, CloudHsmBackups, state_of
from cloudhsm_backup_restore.errors import BackupRestoreError, InvalidPropertiesError
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.ownership import (
    OWNER_TAG_KEY,
    Claimant,
    Target,
    claims_in,
    label_of,
    physical_id_of,
    record,
    relabel,
    tag_value,
    target_of,
)
from cloudhsm_backup_restore.properties import OnDelete, RestoreProperties, parse_properties

logger = logging.getLogger(__name__)
T = TypeVar("T")
Granted = Callable[[Callable[[], Any]], Any]


@dataclass(frozen=True)
class Request:
    """What identifies the resource a request is about: stack, logical id, the event's physical id."""

    stack_id: str
    logical_id: str
    request_type: str = "Create"
    physical_id: str = ""
    """The event's PhysicalResourceId (Update and Delete)."""
    old_backup: tuple[str, str | None] | None = None
    """(BackupId, Region) of OldResourceProperties (Update)."""
    old_properties: Mapping[str, Any] | None = None
    """OldResourceProperties as sent (Update)."""

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Request:
        """The request's identity from a CloudFormation event."""
        old = event.get("OldResourceProperties")
        old_backup = None
        if isinstance(old, Mapping) and isinstance(old.get("BackupId"), str):
            old_backup = (str(old["BackupId"]), str(old.get("Region") or "") or None)
        return cls(
            stack_id=str(event.get("StackId", "")),
            logical_id=str(event.get("LogicalResourceId", "")),
            request_type=str(event.get("RequestType", "")),
            physical_id=str(event.get("PhysicalResourceId", "")),
            old_backup=old_backup,
            old_properties=old if isinstance(old, Mapping) else None,
        )

    def leftover_of_failed_replacement(self, props: RestoreProperties, physical_id: str) -> bool:
        """An Update whose PhysicalResourceId already names the new properties' backup while the old properties
        name another: CloudFormation rolling back a failed replacement, whose backup may be left restored."""
        return (
            self.request_type == "Update"
            and self.old_backup is not None
            and self.old_backup != (props.backup_id, props.region)
            and self.physical_id == physical_id
        )

    def upgrades(self, props: RestoreProperties) -> bool:
        """An Update of a resource the previous release created (physical id = the same bare BackupId)."""
        return (
            self.request_type == "Update"
            and self.physical_id == props.backup_id
            and self.old_backup == (props.backup_id, props.region)
        )


def _quietly(what: str, backup_id: str, call: Callable[[], Any]) -> None:
    """Rewrite the record; a failure only leaves a stale claim, which errs on the side of retaining."""
    try:
        call()
    except BackupRestoreError as error:
        log_event(logger, "ownership.not_updated", what=what, BackupId=backup_id, error=str(error)[:200])


def release(
    backups_for: Callable[[str | None], CloudHsmBackups],
    raw_properties: Mapping[str, Any] | None,
    physical_id: str,
    request: Request,
    granted: Granted,
) -> None:
    """Delete by the record: the sole owner honours OnDelete; an owner that took over hands the claim back;
    any other resource only withdraws its claim. Never blocks a stack on bad input."""
    try:
        props = parse_properties(raw_properties)
    except InvalidPropertiesError as error:
        log_event(logger, "delete.retained", reason=f"properties invalid, retaining: {error}")
        return
    target = target_of(physical_id)
    failed_create = target is None
    if target is None:
        # A failed Create's marker or an id CloudFormation invented: the Create may have restored the
        # backup before failing, in which case the record names it with the ARN it would have answered.
        target = Target(props.backup_id, props.region, legacy=False)
    backups = backups_for(target.region or props.region)
    backup = backups.describe(target.backup_id)
    if backup is None or state_of(backup) in (BackupState.PENDING_DELETION, BackupState.DELETED):
        log_event(logger, "delete.nothing_to_do", BackupId=target.backup_id, BackupState=state_of(backup))
        return
    me = Claimant(
        request.stack_id, request.logical_id, physical_id_of(backup, backups.region) if failed_create else physical_id
    )
    value = tag_value(backup, OWNER_TAG_KEY) if "TagList" in backup else _listed(backups, backup, granted)
    claims = claims_in(value)
    backup_id = target.backup_id
    if claims is None and target.legacy:
        log_event(logger, "delete.legacy_owner", BackupId=backup_id, reason="previous release's id, no record")
    elif claims is None or me.digest not in claims:
        log_event(logger, "delete.retained", BackupId=backup_id, reason="not restored or owned by this resource")
        return
    elif claims[0] != me.digest or len(claims) > 1:
        rest = [claim for claim in claims if claim != me.digest]
        if claims[0] != me.digest:  # withdraw a claim that was taken over: the owner and its label stay
            what, value = "withdrawn", relabel(rest, label_of(str(value)))
        else:  # this owner had taken the backup over: hand it back to the claim below
            what, value = "handed_back", record(rest, me, "returned-by")
        log_event(logger, f"ownership.{what}", BackupId=backup_id, owner=rest[0])
        written = value
        _quietly(what, backup_id, lambda: granted(lambda: backups.tag(backup_id, OWNER_TAG_KEY, written)))
        return
    if props.on_delete is OnDelete.RETAIN:
        log_event(logger, "delete.retained", BackupId=backup_id, reason="OnDelete is Retain")
        if claims is not None:
            _quietly("released", backup_id, lambda: granted(lambda: backups.untag(backup_id, OWNER_TAG_KEY)))
        return
    granted(lambda: backups.delete(backup_id))


def _listed(backups: CloudHsmBackups, backup: Any, granted: Granted) -> str | None:
    tags = granted(lambda: backups.tags(backup))
    return tag_value({"TagList": tags}, OWNER_TAG_KEY)
