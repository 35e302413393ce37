"""Baseline: restore a CloudHSM backup with crhelper wired as its README documents it.

Deliberately naive and faithful to crhelper's defaults (crhelper 2.0.12): ``CfnResource()`` with
``log_level='DEBUG'``, ``polling_interval=2`` (an EventBridge rule ``rate(2 minutes)`` set up on every
Create because a ``poll_create`` is registered) and ``sleep_on_delete=120`` (every Delete sleeps up to
two minutes). The client is a plain ``boto3.client("cloudhsmv2")`` with botocore's default retries.

Handler string: ``index.handler`` with this directory as the code root. The benchmark trusts the
offline ResponseURL's CA through ``SSL_CERT_FILE`` (an environment setting), so the code stays as
documented (``ssl_verify=None``).
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from crhelper import CfnResource

logger = logging.getLogger(__name__)
helper = CfnResource()

try:
    cloudhsm = boto3.client("cloudhsmv2")
except Exception as error:  # the README's init pattern
    helper.init_failure(error)


@helper.create
def create(event: dict[str, Any], context: Any) -> str:
    """Start the restore; crhelper then polls ``poll_create`` every two minutes."""
    backup_id = str(event["ResourceProperties"]["BackupId"])
    cloudhsm.restore_backup(BackupId=backup_id)
    return backup_id


@helper.poll_create
def poll_create(event: dict[str, Any], context: Any) -> str | None:
    """The backup id once READY, else None (crhelper keeps polling)."""
    backup_id = str(event["ResourceProperties"]["BackupId"])
    backups = cloudhsm.describe_backups(Filters={"backupIds": [backup_id]})["Backups"]
    if backups and backups[0]["BackupState"] == "READY":
        return backup_id
    return None


@helper.update
def update(event: dict[str, Any], context: Any) -> None:
    """Nothing to change in place."""


@helper.delete
def delete(event: dict[str, Any], context: Any) -> None:
    """Put the backup back into PENDING_DELETION (crhelper sleeps up to 120 s before answering)."""
    cloudhsm.delete_backup(BackupId=event["PhysicalResourceId"])


def handler(event: dict[str, Any], context: Any) -> None:
    """Lambda entry point."""
    helper(event, context)
