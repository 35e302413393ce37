"""What Create, Update, each poll and Delete do to a backup, independent of crhelper's plumbing.

The invariants each step serves (I1-I4) are in docs/lifecycle.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cloudhsm_backup_restore.attributes import as_attribute
from cloudhsm_backup_restore.backups import INVALID_REQUEST, Backup, BackupState, CloudHsmBackups, backups_in, state_of
from cloudhsm_backup_restore.errors import BackupRestoreError, CloudHsmCallError, InvalidPropertiesError
from cloudhsm_backup_restore.event import CloudFormationEvent
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.ownership import OnDeleteVerdict, OwnershipRecord, Resource, tokens_of, verdict_for
from cloudhsm_backup_restore.properties import BACKUP_ID_PATTERN, OnDelete, RestoreProperties, parse_properties
from cloudhsm_backup_restore.waiting import Verdict, WaitPolicy, wait_until_ready

logger = logging.getLogger(__name__)

MEMO_RESTORED = "Restored"
"""Kept in crhelper's Data across polls: "true" when this operation's own RestoreBackup call succeeded."""
MEMO_DELETE_TIMESTAMP = "RestoredFromDeleteTimestamp"
"""The DeleteTimestamp the backup had when this operation restored it: a later different one ends the wait."""
MEMO_RECORD = "OwnershipRecord"
"""Kept across polls: "deferred" when TagResource refused a backup still restoring (written once READY)."""
RESTORE_WINDOW_SECONDS = 7 * 24 * 3600.0  # PENDING_DELETION, restorable, for 7 days (docs/lifecycle.md, AWS facts)
MEMO_KEYS = (MEMO_RESTORED, MEMO_DELETE_TIMESTAMP, MEMO_RECORD)


class AnsweredElsewhereError(BackupRestoreError):
    """This invocation no longer holds the right to answer (another poll took it, or the wait was ended)."""


@dataclass(frozen=True)
class Request:
    """What identifies the resource a request is about: stack, logical id, the event's physical id."""

    stack_id: str
    logical_id: str
    physical_id: str = ""  # the event's PhysicalResourceId (Update and Delete)
    old_properties: Mapping[str, Any] | None = None  # OldResourceProperties as sent (Update)
    signed_at: float | None = None  # when CloudFormation presigned the ResponseURL; None when it does not say

    @classmethod
    def of(cls, event: CloudFormationEvent) -> Request:
        """The request's identity from a CloudFormation event."""
        old = event.get("OldResourceProperties")
        return cls(
            stack_id=str(event.get("StackId", "")),
            logical_id=str(event.get("LogicalResourceId", "")),
            physical_id=str(event.get("PhysicalResourceId", "")),
            old_properties=old if isinstance(old, Mapping) else None,
            signed_at=signed_at(str(event.get("ResponseURL", ""))),
        )

    @cached_property
    def previous(self) -> RestoreProperties | None:
        """An Update's OldResourceProperties, validated once per request; None for other requests or when invalid."""
        try:
            return None if self.old_properties is None else parse_properties(self.old_properties)
        except InvalidPropertiesError:
            return None


def signed_at(response_url: str) -> float | None:
    """When CloudFormation signed the ResponseURL, an S3 presigned URL: its SigV4 ``X-Amz-Date`` (docs/lifecycle.md,
    "AWS facts"); None when it carries none (the request is then never judged stale)."""
    try:
        date = (parse_qs(urlsplit(response_url).query).get("X-Amz-Date") or [""])[0]
        return datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Step:
    """Where a Create, Update or poll left the backup: READY (answer now) or still on its way (hand off)."""

    physical_id: str
    backup: Backup | None
    ready: bool
    memo: Mapping[str, str]


def _arn_target(physical_id: str) -> tuple[str, str] | None:
    """(BackupId, Region) of a physical id that is a backup ARN; None for a failed Create's marker or an invented id."""
    parts = physical_id.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "cloudhsm" and parts[5].startswith("backup/"):
        backup_id = parts[5].removeprefix("backup/")
        if BACKUP_ID_PATTERN.fullmatch(backup_id) and parts[3]:
            return backup_id, parts[3]
    return None


def _refuse_stale(request: Request, props: RestoreProperties, backup: Backup, me: Resource, now: float) -> None:
    """I3: a backup deleted after CloudFormation signed this request was deleted by what followed it (its resource's
    Delete, a rollback): this delivery is a late or repeated one and restores nothing. X-Amz-Date counts whole seconds:
    a deletion in that second counts as after only when the record names this resource. DeleteTimestamp is "when the
    backup will be permanently deleted" (API reference): the deletion + 7 days when still to come, else itself."""
    stamp = backup.get("DeleteTimestamp")
    if state_of(backup) != BackupState.PENDING_DELETION or request.signed_at is None or not isinstance(stamp, datetime):
        return
    deleted = (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    tie = 0.0 if me.token in (tokens_of(backup) or []) else 1.0
    if (deleted - RESTORE_WINDOW_SECONDS if deleted > now else deleted) >= request.signed_at + tie:
        raise BackupRestoreError(f"Backup {props.backup_id} was deleted after CloudFormation sent this request: a "
                                 "late or repeated delivery of a request already answered; nothing done")  # fmt: skip


def _check(backups: CloudHsmBackups, backup_id: str, last_seen: Backup | None) -> Backup | None:
    """DescribeBackups while waiting; a throttled or failed check is skipped (``last_seen`` stands), not fatal."""
    try:
        return backups.describe(backup_id)
    except CloudHsmCallError as error:
        if not error.transient:
            raise
        log_event(logger, "check.skipped", error=str(error)[:200])
        return last_seen


class BackupLifecycle:
    """Restore, own, protect, wait and delete, with the client factory, clock and sleep injected."""

    def __init__(
        self,
        backups_for: Callable[[str | None], CloudHsmBackups] = backups_in,
        *,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        policy: WaitPolicy | None = None,
    ) -> None:
        self.backups_for = backups_for
        self.now = now
        self.sleep = sleep
        self.policy = policy or WaitPolicy()

    def run(
        self,
        props: RestoreProperties,
        request: Request,
        *,
        started_at: float,
        lambda_left: Callable[[], float],
        may_act: Callable[[], bool],
        handed_off: Mapping[str, Any] | None = None,
    ) -> Step:
        """Create or Update (``handed_off`` None), or one poll of a wait handed off with that memo: bring the backup
        to READY (restoring it if PENDING_DELETION), settle who owns it, or report it still on its way. ``may_act()``
        (the right to answer; a poll takes it) is asked before acting after the wait (I3). A failure undoes nothing: the
        Delete or rollback Update CloudFormation sends for it deletes by the record (I1), and a duplicate delivery
        cannot know whether another delivery already answered SUCCESS (defect 3)."""
        backups = self.backups_for(props.region)
        memo = {key: str(value) for key, value in (handed_off or {}).items() if key in MEMO_KEYS}
        me = Resource(request.stack_id, request.logical_id, str((handed_off or {}).get("PhysicalResourceId") or ""))
        backup: Backup | None
        if handed_off is not None:
            backup = _check(backups, props.backup_id, {"BackupId": props.backup_id})  # state unknown: wait on
        else:
            backup = backups.require(props.backup_id)
            me = Resource(request.stack_id, request.logical_id, backups.arn(backup))
            _refuse_stale(request, props, backup, me, self.now())
            OwnershipRecord(backups, props.tags).refuse_too_many(backup)
            self._delete_rolled_back_replacement(request, props, backups)
            backup = self._restore_if_deleted(backups, props, me, backup, memo)
        polling = handed_off is not None
        return self._wait(
            backups,
            props,
            me,
            backup,
            memo,
            started_at,
            lambda_left,
            may_act,
            polling=polling,
            request=request,
        )

    def _restore_if_deleted(
        self, backups: CloudHsmBackups, props: RestoreProperties, me: Resource, backup: Backup, memo: dict[str, str]
    ) -> Backup:
        """RestoreBackup a PENDING_DELETION backup. Only when this call restored it does it record the owner, protect
        it (I1). A refusal of a backup no longer PENDING_DELETION (another delivery or
        resource restored it) goes on as found; of one still PENDING_DELETION it fails in AWS's words, unless the
        record names this resource (another delivery's restore is taking effect: wait for it)."""
        if state_of(backup) != BackupState.PENDING_DELETION:
            log_event(logger, "restore.skipped", BackupId=props.backup_id, BackupState=state_of(backup))
            return backup
        baseline = as_attribute(backup.get("DeleteTimestamp"))
        try:
            backup = backups.restore(props.backup_id)
        except CloudHsmCallError as error:
            if error.code != INVALID_REQUEST:
                raise
            backup = backups.require(props.backup_id)
            log_event(logger, "RestoreBackup.refused", BackupId=props.backup_id, BackupState=state_of(backup))
            if state_of(backup) != BackupState.PENDING_DELETION:
                return backup
            if tokens_of(backup) != [me.token]:
                raise BackupRestoreError(
                    f"CloudHSM refused to restore backup {backups.where(props.backup_id)}, which is still "
                    f"PENDING_DELETION. AWS said: {error.aws_message or error}"
                ) from error
            memo[MEMO_DELETE_TIMESTAMP] = baseline
            return backup
        memo.update({MEMO_RESTORED: "true", MEMO_DELETE_TIMESTAMP: baseline})
        backup = self._record_restorer(backups, props, me, backup, memo)
        ready = state_of(backup) == BackupState.READY
        return backup if ready else self._protect(backups, props, backup, restored=True)  # before any wait

    def _record_restorer(
        self, backups: CloudHsmBackups, props: RestoreProperties, me: Resource, backup: Backup, memo: dict[str, str]
    ) -> Backup:
        """Record the owner and Tags now (one call); a backup still restoring that refuses them gets both once READY."""
        try:
            return OwnershipRecord(backups, props.tags).record_restorer(backup, me)
        except CloudHsmCallError as error:
            if error.code != INVALID_REQUEST or state_of(backup) == BackupState.READY:
                raise
            log_event(logger, "ownership.deferred", BackupId=backup["BackupId"], BackupState=state_of(backup))
            memo[MEMO_RECORD] = "deferred"
            return backup

    def _delete_rolled_back_replacement(
        self, request: Request, props: RestoreProperties, backups: CloudHsmBackups
    ) -> None:
        """An Update back to this resource's backup from OldResourceProperties naming another (a failed replacement
        rolled back): the other backup gets the Delete CloudFormation never sends for it (best effort, by I1's rule).
        """
        old = request.previous
        identity = props.identity(backups.region)
        if old is None or old.identity(backups.region) == identity or _arn_target(request.physical_id) != identity:
            return
        log_event(logger, "update_rollback.cleanup", BackupId=old.backup_id)
        try:
            self.delete(request.old_properties, "", request)
        except BackupRestoreError as error:
            log_event(logger, "update_rollback.cleanup_failed", error=str(error)[:200])

    # -- waiting -------------------------------------------------------------------------------------

    def _wait(  # noqa: PLR0917 - the one private step of run()
        self,
        backups: CloudHsmBackups,
        props: RestoreProperties,
        me: Resource,
        backup: Backup | None,
        memo: Mapping[str, str],
        started_at: float,
        lambda_left: Callable[[], float],
        may_act: Callable[[], bool],
        *,
        polling: bool,
        request: Request,
    ) -> Step:
        deadline = self.policy.overall_deadline(started_at, props.service_timeout)
        began = self.now()
        restored = memo.get(MEMO_RESTORED) == "true"
        restoring = MEMO_DELETE_TIMESTAMP in memo  # this resource's restore (by this or another delivery)
        last_seen = backup

        def check() -> Backup | None:
            nonlocal last_seen
            found = _check(backups, props.backup_id, last_seen)
            last_seen = found or last_seen
            return found

        def judge(seen: Backup | None) -> Verdict:
            """PENDING_DELETION is worth waiting for only while this operation's own restore takes effect (I2)."""
            state = state_of(seen)
            if state == BackupState.READY:
                return Verdict.SUCCESS
            if state in (BackupState.CREATE_IN_PROGRESS, ""):
                return Verdict.RETRY if seen is not None else Verdict.FAILURE
            if state == BackupState.PENDING_DELETION and restoring and seen is not None:
                same = as_attribute(seen.get("DeleteTimestamp")) == memo.get(MEMO_DELETE_TIMESTAMP)
                return Verdict.RETRY if same else Verdict.FAILURE
            return Verdict.FAILURE

        result = wait_until_ready(
            check,
            current=backup,
            judge=judge,
            budget=lambda: self.policy.budget(
                lambda_left=lambda_left(),
                overall_left=deadline - self.now(),
                polling=polling,
                waited=self.now() - began,
            ),
            sleep=self.sleep,
            policy=self.policy,
        )
        where = backups.where(props.backup_id)
        if result.verdict is not Verdict.RETRY and not may_act():
            raise AnsweredElsewhereError("another poll answered, or the resource's Delete ended the wait")
        if result.verdict is Verdict.SUCCESS and result.backup is not None:
            log_event(logger, "backup.ready", BackupId=props.backup_id, checks=result.checks)
            ready = result.backup
            if not me.arn:
                me = Resource(me.stack_id, me.logical_id, backups.arn(ready))
            record = OwnershipRecord(backups, props.tags)
            if memo.get(MEMO_RECORD) == "deferred":
                ready = record.record_restorer(ready, me)
            ready = self._protect(backups, props, ready, restored=restored)
            if not restored:
                ready = record.settle(ready, me, request.signed_at)
            old = request.previous  # an Update of the same backup: what its previous Tags set
            same = old is not None and old.identity(backups.region) == props.identity(backups.region)
            return Step(me.arn, record.apply_tags(ready, old.tags if old and same else ()), True, memo)
        if result.verdict is Verdict.FAILURE:
            raise self._ended(result.backup, where, restoring)
        if deadline - self.now() < self.policy.poll_interval:
            # The next poll would come after the deadline: answer now rather than after CloudFormation gave up.
            raise BackupRestoreError(
                f"Backup {where} is still {state_of(last_seen) or 'unknown'} after waiting "
                f"{self.now() - started_at:.0f} s; ServiceTimeout is {props.service_timeout} s"
            )
        log_event(logger, "backup.pending", BackupId=props.backup_id, BackupState=state_of(last_seen))
        return Step(me.arn or backups.arn(last_seen or {"BackupId": props.backup_id}), last_seen, False, memo)

    @staticmethod
    def _ended(seen: Backup | None, where: str, restoring: bool) -> BackupRestoreError:
        """Why a wait cannot end well (defect 7): gone, DELETED, or deleted (again) by someone else."""
        state, waiting = state_of(seen), "while waiting for it to become READY"
        what = f"became {state} {waiting}"
        if seen is None:
            what = f"disappeared {waiting}"
        elif state == BackupState.PENDING_DELETION and restoring:
            what = f"was deleted again {waiting} (a Delete, or retention); set NeverExpires true or extend the policy"
        elif state == BackupState.PENDING_DELETION:
            what = f"is PENDING_DELETION, not restored by this resource: deleted by someone else {waiting}"
        return BackupRestoreError(f"Backup {where} {what}")

    @staticmethod
    def _protect(backups: CloudHsmBackups, props: RestoreProperties, backup: Backup, *, restored: bool) -> Backup:
        """NeverExpires as asked, or true for a backup this resource restored: the retention policy would purge a
        restored old backup again (CloudHSM User Guide, "Configure backup retention"). Set at once after the restore,
        before any wait; a backup still restoring that refuses it (undocumented either way) gets it once READY."""
        wanted = props.never_expires if props.never_expires is not None else (True if restored else None)
        if wanted is None or backup.get("NeverExpires") is wanted:
            return backup
        ready = state_of(backup) == BackupState.READY
        try:
            protected = backups.set_never_expires(props.backup_id, wanted)
        except CloudHsmCallError as error:
            if ready or error.code != INVALID_REQUEST:
                raise
            log_event(logger, "protection.deferred", BackupId=props.backup_id, BackupState=state_of(backup))
            return backup
        if ready and state_of(protected) != BackupState.READY:
            raise BackupRestoreError(
                f"Backup {backups.where(props.backup_id)} went back to {state_of(protected)} before it could be "
                "protected (the cluster's backup retention policy?); set NeverExpires true or extend the policy"
            )
        return protected

    # -- Delete --------------------------------------------------------------------------------------

    def delete(self, raw_properties: Mapping[str, Any] | None, physical_id: str, request: Request) -> None:
        """Delete by the record (I1): the sole owner honours OnDelete; a rename's owner hands the backup back; the
        rename's previous resource withdraws; any other resource retains. Never blocks a stack on bad input."""
        try:
            props = parse_properties(raw_properties)
        except InvalidPropertiesError as error:
            log_event(logger, "delete.retained", reason=f"properties invalid, retaining: {error}")
            return
        target = _arn_target(physical_id)
        # A failed Create's marker or an invented id: the Create may have restored the backup before failing; the
        # record then names it with the ARN it would have answered.
        backup_id, region = target or (props.backup_id, props.region)
        backups = self.backups_for(region or props.region)
        backup = backups.describe(backup_id)
        if backup is None or state_of(backup) in (BackupState.PENDING_DELETION, BackupState.DELETED):
            log_event(logger, "delete.nothing_to_do", BackupId=backup_id, BackupState=state_of(backup))
            return
        me = Resource(request.stack_id, request.logical_id, physical_id if target else backups.arn(backup))
        backup = backups.with_tags(backup)
        tokens = tokens_of(backup)
        verdict = verdict_for(me, tokens)
        if verdict is OnDeleteVerdict.RETAIN:
            log_event(logger, "delete.retained", BackupId=backup_id, reason="not restored or owned by this resource")
        elif verdict is OnDeleteVerdict.HONOUR and props.on_delete is OnDelete.DELETE:
            backups.delete(backup_id)
        else:
            if verdict is OnDeleteVerdict.HONOUR:
                log_event(logger, "delete.retained", BackupId=backup_id, reason="OnDelete is Retain")
            OwnershipRecord(backups).release(backup, me, verdict, tokens or [])
