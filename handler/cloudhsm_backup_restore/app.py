"""The Lambda entry point (``cloudhsm_backup_restore.app.handler``): crhelper wiring for each request and poll."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cloudhsm_backup_restore.attributes import to_attributes
from cloudhsm_backup_restore.errors import BackupRestoreError
from cloudhsm_backup_restore.event import CloudFormationEvent
from cloudhsm_backup_restore.lifecycle import BackupLifecycle, Request
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.properties import parse_properties
from cloudhsm_backup_restore.protocol import RestoreResource

if not logging.getLogger().handlers:  # Lambda installs a handler; a plain process has none.
    logging.basicConfig(level=logging.INFO)

logger = logging.getLogger(__name__)
WAIT_STARTED_AT = "WaitStartedAt"
"""Kept in crhelper's CrHelperData across poll invocations: the overall deadline counts from here."""

helper = RestoreResource()
lifecycle = BackupLifecycle()


LifecycleStep = Callable[[CloudFormationEvent, Any], str | None]


def _one_reason(step: LifecycleStep) -> LifecycleStep:
    """Any failure of a lifecycle step becomes one clear Reason, key fact first."""

    def guarded(event: CloudFormationEvent, context: Any) -> str | None:
        try:
            return step(event, context)
        except BackupRestoreError:
            raise
        except Exception as error:
            logger.exception('{"action": "unexpected_error"}')
            raise BackupRestoreError(f"Unexpected {type(error).__name__}: {error}") from error

    return guarded


@_one_reason
def restore(event: CloudFormationEvent, context: Any) -> str | None:
    """Create, Update and each poll of a wait handed off: answer READY with the attributes, or keep waiting."""
    log_event(logger, "request", RequestType=event["RequestType"], LogicalResourceId=event["LogicalResourceId"])
    polling = "CrHelperPoll" in event  # crhelper marks the events its poll rule sends
    props = parse_properties(event.get("ResourceProperties"))
    started_at = float(helper.Data.get(WAIT_STARTED_AT) or lifecycle.now()) if polling else lifecycle.now()
    step = lifecycle.run(
        props,
        Request.of(event),
        started_at=started_at,
        lambda_left=lambda: context.get_remaining_time_in_millis() / 1000.0,
        may_act=helper.may_act,
        handed_off=helper.Data if polling else None,
    )
    helper.Data.clear()
    if step.ready:
        helper.Data.update(to_attributes(step.backup or {}))
    elif polling:
        return None  # crhelper answers nothing; EventBridge invokes again next minute
    else:
        helper.Data.update(step.memo, **{WAIT_STARTED_AT: started_at})  # what the polls need to know
        helper.hand_off(started_at + props.service_timeout)
    return step.physical_id


@_one_reason
def delete(event: CloudFormationEvent, context: Any) -> str | None:
    """Delete: end the resource's wait (I3: before it answers), then only the backup's owner honours OnDelete."""
    log_event(logger, "request", RequestType="Delete", LogicalResourceId=event["LogicalResourceId"])
    helper.polling.end(str(event["StackId"]), str(event["LogicalResourceId"]))
    lifecycle.delete(event.get("ResourceProperties"), str(event["PhysicalResourceId"]), Request.of(event))
    return str(event["PhysicalResourceId"])


helper.create(restore)  # crhelper's decorators, called directly: its untyped API would untype the functions
helper.update(restore)
helper.poll_create(restore)
helper.poll_update(restore)
helper.delete(delete)


def handler(event: object, context: Any) -> None:
    """Lambda entry point."""
    helper(event, context)
