"""What Create, Update and each poll do to a backup, independent of crhelper's plumbing (Delete: ``release``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cloudhsm_backup_restore.attributes import as_attribute
from cloudhsm_backup_restore.backups import (
    INVALID_REQUEST,
    BackupState,
    CloudHsmBackups,
    backups_in,
    granted,
    state_of,
)
from cloudhsm_backup_restore.claims import claim_restored, settle_ownership
from cloudhsm_backup_restore.errors import (
    BackupDeletedError,
    BackupNotFoundError,
    BackupRestoreError,
    BackupWaitTimeoutError,
    CloudHsmCallError,
    RestoreRefusedError,
)
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.ownership import (
    OWNER_TAG_KEY,
    Claimant,
    claims_in,
    physical_id_of,
    tag_value,
)
from cloudhsm_backup_restore.properties import OnDelete, RestoreProperties
from cloudhsm_backup_restore.protection import (
    MEMO_DELETE_TIMESTAMP,
    MEMO_RECORD,
    MEMO_RESTORED,
    protect,
    protect_at_once,
    revive,
    undo,
)
from cloudhsm_backup_restore.release import Request, release
from cloudhsm_backup_restore.waiting import Verdict, WaitPolicy, verdict, wait_until_ready

logger = logging.getLogger(__name__)
T = TypeVar("T")
UNKNOWN_STATE: dict[str, Any] = {"BackupState": "UNKNOWN"}
"""Stands for a backup whose check was skipped (throttled, failed): keep waiting, as for any pending state."""

FAILED_REPLACEMENT_ID = "update-failed-replacement"
"""Not a backup id: ``release`` then finds the backup by the properties and the ARN the Update would have answered."""

__all__ = ["BackupLifecycle", "Request", "Step"]


@dataclass(frozen=True)
class Step:
    """Where a Create, Update or poll left the backup: READY (answer now) or still on its way (hand off)."""

    physical_id: str
    backup: Any
    ready: bool
    memo: Mapping[str, str] = field(default_factory=dict)


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

    def _granted(self, call: Callable[[], T]) -> T:
        return granted(call, self.policy.iam_grace, self.sleep)

    def restore(
        self, props: RestoreProperties, request: Request, *, started_at: float, lambda_left: Callable[[], float]
    ) -> Step:
        """Create and Update: bring the backup to READY (restoring it if PENDING_DELETION) and settle who owns it."""
        backups = self.backups_for(props.region)
        backup = backups.require(props.backup_id)
        me = Claimant(request.stack_id, request.logical_id, physical_id_of(backup, backups.region))
        if request.leftover_of_failed_replacement(props, me.physical_id):
            self._clean_up_failed_replacement(request)
        memo: dict[str, str] = {}
        contended = False
        try:
            if state_of(backup) == BackupState.PENDING_DELETION:
                before = backup
                backup, restored = self._restore(backups, props, me)
                contended = not restored  # refused because someone restored it just now: leave its record alone
                if restored:
                    memo = {MEMO_RESTORED: "true", MEMO_DELETE_TIMESTAMP: as_attribute(before.get("DeleteTimestamp"))}
                    backup = self._claim_restored(backups, me, backup, memo)
                    backup = protect_at_once(backups, props, backup, self._granted)
            else:
                log_event(logger, "restore.skipped", BackupId=props.backup_id, BackupState=state_of(backup))
            return self._wait(
                backups,
                props,
                request,
                me,
                backup=backup,
                memo=memo,
                started_at=started_at,
                lambda_left=lambda_left,
                polling=False,
                settle=not contended,
            )
        except Exception:
            if memo and props.on_delete is OnDelete.DELETE:
                undo(backups, props, self._granted, me)
            raise

    def poll(
        self,
        props: RestoreProperties,
        request: Request,
        memo: Mapping[str, Any],
        *,
        started_at: float,
        lambda_left: Callable[[], float],
    ) -> Step:
        """One poll invocation after the hand-off: check, wait a bounded while, report."""
        backups = self.backups_for(props.region)
        backup: Any
        try:
            backup = backups.describe(props.backup_id)
        except CloudHsmCallError as error:
            if not error.transient:
                raise
            log_event(logger, "check.skipped", error=str(error)[:200])  # like any check while waiting
            backup = UNKNOWN_STATE
        kept = {key: str(memo[key]) for key in (MEMO_RESTORED, MEMO_DELETE_TIMESTAMP, MEMO_RECORD) if key in memo}
        me = Claimant(request.stack_id, request.logical_id, self._handed_off_id(props, memo, backups, backup))
        try:
            return self._wait(
                backups,
                props,
                request,
                me,
                backup=backup,
                memo=kept,
                started_at=started_at,
                lambda_left=lambda_left,
                polling=True,
            )
        except Exception:
            if kept.get(MEMO_RESTORED) == "true" and props.on_delete is OnDelete.DELETE:
                undo(backups, props, self._granted, me)
            raise

    @staticmethod
    def _handed_off_id(props: RestoreProperties, memo: Mapping[str, Any], backups: CloudHsmBackups, backup: Any) -> str:
        """The poll's physical id: the described backup's ARN, else the id the hand-off answered (kept by crhelper)."""
        if backup and "BackupId" in backup:
            return physical_id_of(backup, backups.region)
        handed_off = str(memo.get("PhysicalResourceId") or "")
        if handed_off.startswith("arn:"):
            return handed_off
        return physical_id_of({"BackupId": props.backup_id}, backups.region)

    def _clean_up_failed_replacement(self, request: Request) -> None:
        """The rolled-back replacement's backup gets the Delete CloudFormation never sends for it (best effort)."""
        log_event(logger, "update_rollback.cleanup", BackupId=(request.old_backup or ("",))[0])
        try:
            release(self.backups_for, request.old_properties, FAILED_REPLACEMENT_ID, request, self._granted)
        except BackupRestoreError as error:
            log_event(logger, "update_rollback.cleanup_failed", error=str(error)[:200])

    def delete(self, raw_properties: Mapping[str, Any] | None, physical_id: str, request: Request) -> None:
        """Delete: honour OnDelete only for a backup this resource restored and still owns."""
        release(self.backups_for, raw_properties, physical_id, request, self._granted)

    # -- restoring and owning ----------------------------------------------------------------------

    def _claim_restored(self, backups: CloudHsmBackups, me: Claimant, backup: Any, memo: dict[str, str]) -> Any:
        """Record the owner now; a backup still restoring that refuses tags gets its record once READY."""
        try:
            return claim_restored(backups, me, backup, self._granted)
        except CloudHsmCallError as error:
            if error.code != INVALID_REQUEST or state_of(backup) == BackupState.READY:
                raise
            log_event(logger, "ownership.deferred", BackupId=backup["BackupId"], BackupState=state_of(backup))
            memo[MEMO_RECORD] = "deferred"
            return backup

    def _restore(self, backups: CloudHsmBackups, props: RestoreProperties, me: Claimant) -> tuple[Any, bool]:
        """RestoreBackup; a refusal fails fast in AWS's words unless a duplicate delivery of ours restored it."""
        try:
            return self._granted(lambda: backups.restore(props.backup_id)), True
        except CloudHsmCallError as error:
            if error.code != INVALID_REQUEST:
                raise
            current = backups.require(props.backup_id)
            claims = claims_in(tag_value(current, OWNER_TAG_KEY)) or []
            log_event(logger, "RestoreBackup.refused", BackupId=props.backup_id, BackupState=state_of(current))
            if claims[:1] == [me.digest]:
                return current, True  # a duplicate delivery of this very request restored it
            if state_of(current) != BackupState.PENDING_DELETION:
                return current, False  # restored meanwhile by someone else: its owner stays the owner
            raise RestoreRefusedError(
                f"CloudHSM refused to restore backup {backups.where(props.backup_id)}, which is still "
                f"PENDING_DELETION. AWS said: {error.aws_message or error}"
            ) from error

    @staticmethod
    def _answered_id(props: RestoreProperties, request: Request, me: Claimant, backup: Any) -> str:
        """The ARN; but a previous-release resource whose record could not be written keeps its bare BackupId,
        since a new id would bring a cleanup Delete of the old one, which only the record can stop."""
        legacy = request.physical_id == props.backup_id and request.request_type == "Update"
        if legacy and me.digest not in (claims_in(tag_value(backup, OWNER_TAG_KEY)) or []):
            log_event(logger, "ownership.upgrade_deferred", BackupId=props.backup_id, reason="no record written")
            return request.physical_id
        return me.physical_id

    # -- waiting -----------------------------------------------------------------------------------

    def _wait(
        self,
        backups: CloudHsmBackups,
        props: RestoreProperties,
        request: Request,
        me: Claimant,
        *,
        backup: Any,
        memo: Mapping[str, str],
        started_at: float,
        lambda_left: Callable[[], float],
        polling: bool,
        settle: bool = True,
    ) -> Step:
        deadline = self.policy.overall_deadline(started_at, props.service_timeout)

        def reclaim(restored_again: Any) -> Any:
            """Record this resource again on a backup it had to restore again (the deletion may drop tags)."""
            return claim_restored(backups, me, restored_again, self._granted)

        began = self.now()
        last_seen = revive(backups, props, backup, memo, self._granted, reclaim=reclaim) if backup else backup

        def check() -> Any:
            """DescribeBackups; a throttled or failed check while waiting is skipped, not fatal."""
            nonlocal last_seen
            try:
                last_seen = backups.describe(props.backup_id)
            except CloudHsmCallError as error:
                if not error.transient:
                    raise
                log_event(logger, "check.skipped", error=str(error)[:200])
            if last_seen:
                last_seen = revive(backups, props, last_seen, memo, self._granted, reclaim=reclaim)
            return last_seen

        result = wait_until_ready(
            check,
            current=last_seen,
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
        if result.ready:
            log_event(logger, "backup.ready", BackupId=props.backup_id, checks=result.checks)
            restored = memo.get(MEMO_RESTORED) == "true"
            ready = result.backup
            if memo.get(MEMO_RECORD) == "deferred":
                ready = claim_restored(backups, me, ready, self._granted)
            ready = protect(backups, props, ready, restored=restored, granted=self._granted, reclaim=reclaim)
            if not restored and settle:
                ready = settle_ownership(backups, props, request, me, ready, granted=self._granted)
            elif not restored:
                log_event(logger, "backup.adopted", BackupId=props.backup_id, reason="restored concurrently by another")
            return Step(self._answered_id(props, request, me, ready), ready, True, memo)
        if verdict(result.backup) is Verdict.FAILURE:
            if result.backup is None:
                raise BackupNotFoundError(f"Backup {where} disappeared while waiting for it to become READY")
            raise BackupDeletedError(f"Backup {where} became DELETED while waiting for it to become READY")
        if deadline - self.now() < self.policy.poll_interval:
            # The next poll would come after the deadline: answer now rather than after CloudFormation gave up.
            raise BackupWaitTimeoutError(
                f"Backup {where} is still {state_of(result.backup) or 'unknown'} after waiting "
                f"{self.now() - started_at:.0f} s; ServiceTimeout is {props.service_timeout} s"
            )
        log_event(logger, "backup.pending", BackupId=props.backup_id, BackupState=state_of(result.backup))
        return Step(me.physical_id, result.backup, False, memo)
