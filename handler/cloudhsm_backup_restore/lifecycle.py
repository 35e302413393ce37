"""What Create, Update, Delete and each poll do to a backup, independent of crhelper's plumbing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cloudhsm_backup_restore.backups import BackupState, CloudHsmBackups, backups_in, state_of
from cloudhsm_backup_restore.errors import (
    BackupDeletedError,
    BackupNotFoundError,
    BackupWaitTimeoutError,
    CloudHsmCallError,
    InvalidPropertiesError,
)
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.properties import (
    BACKUP_ID_PATTERN,
    OnDelete,
    RestoreProperties,
    parse_properties,
)
from cloudhsm_backup_restore.waiting import Verdict, WaitPolicy, verdict, wait_until_ready

logger = logging.getLogger(__name__)
T = TypeVar("T")
UNKNOWN_STATE: dict[str, Any] = {"BackupState": "UNKNOWN"}
"""Stands for a backup whose check was skipped (throttled, failed): keep waiting, as for any pending state."""


@dataclass(frozen=True)
class Step:
    """Where a Create, Update or poll left the backup: READY (answer now) or still on its way (hand off)."""

    physical_id: str
    backup: Any
    ready: bool


class BackupLifecycle:
    """Restore, wait, apply NeverExpires and delete, with the client factory, clock and sleep injected."""

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

    def restore(self, props: RestoreProperties, *, started_at: float, lambda_left: Callable[[], float]) -> Step:
        """Create and Update: bring the backup to READY (restoring it if PENDING_DELETION) within budget."""
        backups = self.backups_for(props.region)
        backup = backups.require(props.backup_id)
        if state_of(backup) == BackupState.PENDING_DELETION:
            backup = self._granted(lambda: backups.restore(props.backup_id))
        else:
            log_event(logger, "restore.skipped", BackupId=props.backup_id, BackupState=state_of(backup))
        return self._wait(backups, props, backup, started_at=started_at, lambda_left=lambda_left, polling=False)

    def poll(self, props: RestoreProperties, *, started_at: float, lambda_left: Callable[[], float]) -> Step:
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
        return self._wait(backups, props, backup, started_at=started_at, lambda_left=lambda_left, polling=True)

    def _wait(
        self,
        backups: CloudHsmBackups,
        props: RestoreProperties,
        backup: Any,
        *,
        started_at: float,
        lambda_left: Callable[[], float],
        polling: bool,
    ) -> Step:
        deadline = self.policy.overall_deadline(started_at, props.service_timeout)
        began = self.now()
        last_seen = backup

        def check() -> Any:
            """DescribeBackups; a throttled or failed check while waiting is skipped, not fatal."""
            nonlocal last_seen
            try:
                last_seen = backups.describe(props.backup_id)
            except CloudHsmCallError as error:
                if not error.transient:
                    raise
                log_event(logger, "check.skipped", error=str(error)[:200])
            return last_seen

        result = wait_until_ready(
            check,
            current=backup,
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
            return Step(props.backup_id, self._apply_never_expires(backups, props, result.backup), True)
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
        return Step(props.backup_id, result.backup, False)

    def _apply_never_expires(self, backups: CloudHsmBackups, props: RestoreProperties, backup: Any) -> Any:
        if props.never_expires is None or backup.get("NeverExpires") is props.never_expires:
            return backup
        never_expires = props.never_expires
        return self._granted(lambda: backups.set_never_expires(props.backup_id, never_expires))

    def delete(self, raw_properties: Mapping[str, Any] | None, physical_id: str) -> None:
        """Delete: honour OnDelete for a backup this resource restored; never block a stack on bad input."""
        if not BACKUP_ID_PATTERN.fullmatch(physical_id):
            log_event(logger, "delete.skipped", reason="not a backup id (a failed Create)")
            return
        try:
            props = parse_properties(raw_properties)
        except InvalidPropertiesError as error:
            log_event(logger, "delete.retained", reason=f"properties invalid, retaining: {error}")
            return
        if props.on_delete is OnDelete.RETAIN:
            log_event(logger, "delete.retained", BackupId=physical_id)
            return
        backups = self.backups_for(props.region)
        self._granted(lambda: backups.delete(physical_id))

    def _granted(self, call: Callable[[], T]) -> T:
        """Run a CloudHSM action, retrying AccessDenied a few times while a fresh IAM grant propagates."""
        for pause in (*self.policy.iam_grace, None):
            try:
                return call()
            except CloudHsmCallError as error:
                if not error.access_denied or pause is None:
                    raise
                log_event(logger, "access_denied.retrying", pause=pause)
                self.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover
