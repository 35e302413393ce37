"""The CloudHSM calls the resource makes (describe, restore, delete, modify); the client is injected."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from cloudhsm_backup_restore import __version__
from cloudhsm_backup_restore.errors import BackupDeletedError, BackupNotFoundError, CloudHsmCallError
from cloudhsm_backup_restore.logs import log_event

if TYPE_CHECKING:
    from mypy_boto3_cloudhsmv2 import CloudHSMV2Client
    from mypy_boto3_cloudhsmv2.type_defs import BackupTypeDef

    Backup = BackupTypeDef
else:
    Backup = dict

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
"""botocore standard retry mode: throttling and internal failures are retried with capped backoff."""
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    connect_timeout=3,
    read_timeout=5,
    user_agent_extra=f"cloudhsm-backup-restore/{__version__}",
)
ACCESS_DENIED_CODES = frozenset({"CloudHsmAccessDeniedException", "AccessDeniedException", "AccessDenied"})
INVALID_REQUEST = "CloudHsmInvalidRequestException"
RETRIED_CODES = frozenset({"ThrottlingException", "CloudHsmInternalFailureException", "ServiceUnavailable"})


class BackupState(StrEnum):
    """The states CloudHSM reports for a backup."""

    CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
    READY = "READY"
    DELETED = "DELETED"
    PENDING_DELETION = "PENDING_DELETION"


@cache
def cloudhsm_client(region: str | None) -> CloudHSMV2Client:
    """A CloudHSM v2 client per region; endpoints come from boto3's standard settings."""
    return boto3.client("cloudhsmv2", region_name=region, config=CLIENT_CONFIG)


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError ('Unknown' when absent)."""
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")).strip()


class CloudHsmBackups:
    """Backups in one region, reached through an injected CloudHSM v2 client."""

    def __init__(self, client: CloudHSMV2Client, region: str | None = None) -> None:
        self.client = client
        self.region = region or client.meta.region_name

    def where(self, backup_id: str) -> str:
        """How errors name a backup: its id and region."""
        return f"{backup_id} in {self.region}"

    @contextmanager
    def _translated(self, operation: str, backup_id: str) -> Iterator[None]:
        """Turn botocore failures into one-line errors that lead with what failed and what to do."""
        try:
            yield
        except ClientError as error:
            code, message = error_code(error), _error_message(error)
            if code in ACCESS_DENIED_CODES:
                raise CloudHsmCallError(
                    f"Access denied: the provider's role needs cloudhsm:{operation} "
                    f"(on {self.where(backup_id)}). AWS said: {message}",
                    access_denied=True,
                ) from error
            if code in RETRIED_CODES:
                raise CloudHsmCallError(
                    f"CloudHSM {operation} for {self.where(backup_id)} still failed after {MAX_ATTEMPTS} "
                    f"attempts ({code}): {message}",
                    transient=True,
                ) from error
            raise CloudHsmCallError(
                f"CloudHSM {operation} failed for {self.where(backup_id)} ({code}): {message}"
            ) from error
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, BotoConnectionError) as error:
            raise CloudHsmCallError(
                f"Could not reach the CloudHSM endpoint for {self.region} calling {operation} for {backup_id}: {error}",
                transient=True,
            ) from error
        except BotoCoreError as error:
            raise CloudHsmCallError(f"CloudHSM {operation} failed for {self.where(backup_id)}: {error}") from error

    def describe(self, backup_id: str) -> Backup | None:
        """The backup as CloudHSM reports it now, or None when it does not exist (all pages read)."""
        with self._translated("DescribeBackups", backup_id):
            try:
                pages = self.client.get_paginator("describe_backups").paginate(Filters={"backupIds": [backup_id]})
                for page in pages:
                    for backup in page.get("Backups", []):
                        if backup.get("BackupId") == backup_id:
                            return backup
            except ClientError as error:
                if error_code(error) == "CloudHsmResourceNotFoundException":
                    return None
                raise
        return None

    def require(self, backup_id: str) -> Backup:
        """The backup, which must exist and must not be DELETED."""
        backup = self.describe(backup_id)
        if backup is None:
            raise BackupNotFoundError(f"Backup {self.where(backup_id)} was not found: check BackupId and Region")
        if backup.get("BackupState") == BackupState.DELETED:
            raise BackupDeletedError(
                f"Backup {self.where(backup_id)} is DELETED: its 7-day restore window has passed "
                "and it cannot be restored"
            )
        return backup

    def restore(self, backup_id: str) -> Backup:
        """RestoreBackup; when CloudHSM refuses, report the backup as it is now and let the wait decide.

        A duplicate delivery of the same event may arrive while the first restore is taking effect: the
        refusal then says nothing about the outcome, and waiting (bounded by ServiceTimeout) does.
        """
        log_event(logger, "RestoreBackup", BackupId=backup_id, Region=self.region)
        try:
            with self._translated("RestoreBackup", backup_id):
                return self.client.restore_backup(BackupId=backup_id)["Backup"]
        except CloudHsmCallError as error:
            if not isinstance(error.__cause__, ClientError) or error_code(error.__cause__) != INVALID_REQUEST:
                raise
            current = self.require(backup_id)
            log_event(logger, "RestoreBackup.refused", BackupId=backup_id, BackupState=state_of(current))
            return current

    def delete(self, backup_id: str) -> None:
        """DeleteBackup; a backup already PENDING_DELETION, DELETED or gone counts as deleted."""
        log_event(logger, "DeleteBackup", BackupId=backup_id, Region=self.region)
        try:
            with self._translated("DeleteBackup", backup_id):
                try:
                    self.client.delete_backup(BackupId=backup_id)
                except ClientError as error:
                    if error_code(error) == "CloudHsmResourceNotFoundException":
                        return
                    raise
        except CloudHsmCallError as error:
            try:
                current = self.describe(backup_id)
            except CloudHsmCallError:
                raise error from error.__cause__  # the DeleteBackup failure is the one to report
            if current is None or current.get("BackupState") in (
                BackupState.PENDING_DELETION,
                BackupState.DELETED,
            ):
                return
            raise

    def set_never_expires(self, backup_id: str, never_expires: bool) -> Backup:
        """ModifyBackupAttributes: exempt the backup from (or return it to) the cluster's retention policy."""
        log_event(logger, "ModifyBackupAttributes", BackupId=backup_id, NeverExpires=never_expires)
        with self._translated("ModifyBackupAttributes", backup_id):
            return self.client.modify_backup_attributes(BackupId=backup_id, NeverExpires=never_expires)["Backup"]


def backups_in(region: str | None) -> CloudHsmBackups:
    """The default factory: a real boto3 client for the region (the function's own when None)."""
    return CloudHsmBackups(cloudhsm_client(region), region)


def state_of(backup: Any) -> str:
    """The backup's state, '' when unknown."""
    return str(backup.get("BackupState", "")) if backup else ""
