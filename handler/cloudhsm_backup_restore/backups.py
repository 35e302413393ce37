"""The CloudHSM calls the resource makes (describe, restore, delete, modify); the client is injected."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from cloudhsm_backup_restore import __version__
from cloudhsm_backup_restore.errors import BackupRestoreError, CloudHsmCallError
from cloudhsm_backup_restore.logs import log_event

if TYPE_CHECKING:
    from mypy_boto3_cloudhsmv2 import CloudHSMV2Client
    from mypy_boto3_cloudhsmv2.type_defs import BackupTypeDef, TagTypeDef

    Backup = BackupTypeDef
    """A backup as DescribeBackups, RestoreBackup and ModifyBackupAttributes return it (botocore's shape)."""
else:
    Backup = TagTypeDef = dict

logger = logging.getLogger(__name__)
T = TypeVar("T")

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
TAG_LIMIT_CODES = frozenset({"CloudHsmResourceLimitExceededException", "CloudHsmTagException"})
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


IAM_GRACE = (2.0, 4.0, 8.0)
"""Pauses before retrying an action IAM denied: a per-backup grant created just before the resource (as the CDK
construct does) can take seconds to propagate."""


class CloudHsmBackups:
    """Backups in one region, reached through an injected CloudHSM v2 client. Actions on a backup are retried while
    IAM denies them (``_act``); DescribeBackups is not, since its grant comes with the provider."""

    def __init__(
        self,
        client: CloudHSMV2Client,
        region: str | None = None,
        *,
        iam_grace: tuple[float, ...] = IAM_GRACE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.region = region or client.meta.region_name
        self.iam_grace = iam_grace
        self.sleep = sleep

    def _act(self, operation: str, backup_id: str, call: Callable[[], T], **logged: object) -> T:
        """One action on a backup: logged, translated, and retried while IAM denies it (a fresh grant)."""
        log_event(logger, operation, BackupId=backup_id, Region=self.region, **logged)
        for pause in (*self.iam_grace, None):
            try:
                with self._translated(operation, backup_id):
                    return call()
            except CloudHsmCallError as error:
                if not error.access_denied or pause is None:
                    raise
                log_event(logger, "access_denied.retrying", pause=pause)
                self.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def arn(self, backup: Backup) -> str:
        """The backup's ARN, its identity and the resource's PhysicalResourceId (composed if AWS sent none)."""
        arn = backup.get("BackupArn")
        if isinstance(arn, str) and arn.startswith("arn:"):
            return arn
        # botocore's endpoint data knows every partition (aws-cn, aws-us-gov, aws-eusc, the iso ones...).
        return f"arn:{self.client.meta.partition}:cloudhsm:{self.region}::backup/{backup['BackupId']}"

    def where(self, backup_id: str) -> str:
        """How errors name a backup: its id and region."""
        return f"{backup_id} in {self.region}"

    @contextmanager
    def _translated(self, operation: str, backup_id: str) -> Iterator[None]:
        """Turn botocore failures into one-line errors that lead with what failed and what to do."""
        where = self.where(backup_id)
        try:
            yield
        except ClientError as error:
            code = error_code(error)
            message = str(error.response.get("Error", {}).get("Message", "")).strip()
            denied, transient = code in ACCESS_DENIED_CODES, code in RETRIED_CODES
            if denied:
                text = f"Access denied: the provider's role needs cloudhsm:{operation} (on {where}). AWS said"
            elif transient:  # botocore's max_attempts counts the retries
                text = f"CloudHSM {operation} for {where} still failed after {MAX_ATTEMPTS + 1} attempts ({code})"
            else:
                text = f"CloudHSM {operation} failed for {where} ({code})"
            raise CloudHsmCallError(
                f"{text}: {message}", access_denied=denied, transient=transient, code=code, aws_message=message
            ) from error
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, BotoConnectionError) as error:
            raise CloudHsmCallError(
                f"Could not reach the CloudHSM endpoint for {self.region} calling {operation} for {backup_id}: {error}",
                transient=True,
            ) from error
        except BotoCoreError as error:
            raise CloudHsmCallError(f"CloudHSM {operation} failed for {where}: {error}") from error

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
            raise BackupRestoreError(f"Backup {self.where(backup_id)} was not found: check BackupId and Region")
        if backup.get("BackupState") == BackupState.DELETED:
            raise BackupRestoreError(
                f"Backup {self.where(backup_id)} is DELETED: its 7-day restore window has passed "
                "and it cannot be restored"
            )
        return backup

    def restore(self, backup_id: str) -> Backup:
        """RestoreBackup; a refusal raises CloudHsmCallError with code CloudHsmInvalidRequestException."""
        return self._act("RestoreBackup", backup_id, lambda: self.client.restore_backup(BackupId=backup_id)["Backup"])

    def delete(self, backup_id: str) -> None:
        """DeleteBackup; a backup already PENDING_DELETION, DELETED or gone counts as deleted."""
        try:
            self._act("DeleteBackup", backup_id, lambda: self.client.delete_backup(BackupId=backup_id))
        except CloudHsmCallError as error:
            if error.code == "CloudHsmResourceNotFoundException":
                return
            try:
                current = self.describe(backup_id)
            except CloudHsmCallError:
                raise error from error.__cause__  # the DeleteBackup failure is the one to report
            if state_of(current) not in ("", BackupState.PENDING_DELETION, BackupState.DELETED):
                raise

    def set_never_expires(self, backup_id: str, never_expires: bool) -> Backup:
        """ModifyBackupAttributes: exempt the backup from (or return it to) the cluster's retention policy."""
        return self._act(
            "ModifyBackupAttributes",
            backup_id,
            lambda: self.client.modify_backup_attributes(BackupId=backup_id, NeverExpires=never_expires)["Backup"],
            NeverExpires=never_expires,
        )

    def with_tags(self, backup: Backup) -> Backup:
        """The backup with its TagList: DescribeBackups' own, or ListTags (all pages) when it carried none."""
        if "TagList" in backup:
            return backup
        backup_id = backup["BackupId"]

        def list_tags() -> list[TagTypeDef]:
            page = self.client.list_tags(ResourceId=backup_id)
            tags = list(page.get("TagList", []))
            while page.get("NextToken"):
                page = self.client.list_tags(ResourceId=backup_id, NextToken=page["NextToken"])
                tags += page.get("TagList", [])
            return tags

        return {**backup, "TagList": self._act("ListTags", backup_id, list_tags)}

    def tag(self, backup: Backup, tags: Mapping[str, str]) -> Backup:
        """TagResource: add or overwrite tags (1 to 50: botocore cloudhsmv2 model, TagList); the backup with them."""
        backup_id, tag_list = backup["BackupId"], [TagTypeDef(Key=key, Value=value) for key, value in tags.items()]
        self._act("TagResource", backup_id, lambda: self.client.tag_resource(ResourceId=backup_id, TagList=tag_list))
        return {**backup, "TagList": [t for t in backup.get("TagList") or [] if t.get("Key") not in tags] + tag_list}

    def untag(self, backup: Backup, keys: Sequence[str]) -> Backup:
        """UntagResource: remove tags by key; the backup without them."""
        backup_id = backup["BackupId"]
        self._act("UntagResource", backup_id, lambda: self.client.untag_resource(ResourceId=backup_id, TagKeyList=keys))
        return {**backup, "TagList": [t for t in backup.get("TagList") or [] if t.get("Key") not in keys]}


def backups_in(region: str | None) -> CloudHsmBackups:
    """The default factory: a real boto3 client for the region (the function's own when None)."""
    return CloudHsmBackups(cloudhsm_client(region), region)


def state_of(backup: Backup | None) -> str:
    """The backup's state, '' when unknown."""
    return str(backup.get("BackupState", "")) if backup else ""
