"""crhelper's CfnResource with its unsafe defaults overridden: one complete response per invocation."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any, cast

import boto3
from crhelper import CfnResource
from crhelper.resource_helper import FAILED

from cloudhsm_backup_restore.attributes import fit_response
from cloudhsm_backup_restore.errors import clip_reason
from cloudhsm_backup_restore.event import CloudFormationEvent
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.polling import (
    HANDOFF_CLIENT_CONFIG,
    RESPONSE_SOCKET_TIMEOUT,
    TIMER_MARGIN_SECONDS,
    Answer,
    ParkedElsewhereError,
    PollingHandOff,
)

logger = logging.getLogger(__name__)

REQUEST_TYPES = ("Create", "Update", "Delete")
REQUIRED_EVENT_FIELDS = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId")


def failed_create_id(request_id: str) -> str:
    """The PhysicalResourceId of a failed Create: not a backup id, so its rollback Delete touches nothing."""
    return f"create-failed-{request_id or 'unknown'}"


def _missing_fields(event: object) -> list[str]:
    if not isinstance(event, dict):
        return list(REQUIRED_EVENT_FIELDS)
    missing = [name for name in REQUIRED_EVENT_FIELDS if not isinstance(event.get(name), str) or not event[name]]
    if "RequestType" not in missing and event["RequestType"] not in REQUEST_TYPES:
        missing.append("RequestType (Create, Update or Delete)")
    if event.get("RequestType") in ("Update", "Delete") and not event.get("PhysicalResourceId"):
        missing.append("PhysicalResourceId")
    return missing


_CfnResourceBase: Any = CfnResource  # crhelper's stubs omit the private hooks overridden here


class RestoreResource(_CfnResourceBase):  # type: ignore[misc]
    """crhelper's CfnResource with its hazards overridden (docs/handoff.md: logs, Delete sleep, polling, answers, TLS);
    one answer per invocation and per wait (the right to answer, docs/lifecycle.md)."""

    _event: CloudFormationEvent

    def __init__(self) -> None:
        self._send_lock = threading.Lock()
        self._sent = False
        self._handoff = False
        self._handoff_deadline = 0.0
        self._answered_elsewhere = False
        self._taken: Answer | None = None
        self._is_poll = False
        super().__init__(
            json_logging=True,
            log_level="INFO",
            boto_level="WARNING",
            sleep_on_delete=0,  # crhelper sleeps up to 120 s on every Delete to let logs flush
            ssl_verify=os.environ.get("AWS_CA_BUNDLE") or None,
        )
        self.polling = PollingHandOff(self._aws_client)

    def _aws_client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service, region_name=self._region, verify=self._ssl_verify, config=HANDOFF_CLIENT_CONFIG
        )

    def _set_timeout(self) -> None:
        """crhelper's timeout guard, armed TIMER_MARGIN_SECONDS before the deadline so its answer lands."""
        seconds = self._context.get_remaining_time_in_millis() / 1000.0 - TIMER_MARGIN_SECONDS
        self._timer = threading.Timer(max(0.0, seconds), self._timeout)
        self._timer.daemon = True
        self._timer.start()

    def hand_off(self, deadline: float) -> None:
        """Keep waiting through EventBridge polling until ``deadline`` (epoch s: when CloudFormation gives up)."""
        self._handoff = True
        self._handoff_deadline = deadline

    def __call__(self, event: object, context: Any) -> None:
        with self._send_lock:
            self._sent = False
            self._taken = None
        self._handoff = False
        self._answered_elsewhere = False
        self._is_poll = isinstance(event, dict) and "CrHelperPoll" in event  # crhelper adds the key mid-hand-off
        if self._is_poll:
            admitted = self.polling.admit(cast(CloudFormationEvent, event))
            if admitted is None:
                return
            event = admitted
        missing = _missing_fields(event)
        if missing:
            log_event(logger, "event.malformed", missing=missing)
            self._answer_failed(event, "Malformed CloudFormation request: missing or invalid " + ", ".join(missing))
            if self._is_poll:
                self.polling.remove(cast(CloudFormationEvent, event))  # a poll it cannot run must not fire again
            return
        super().__call__(event, context)

    def may_act(self) -> bool:
        """Whether this invocation still holds the right to answer (a poll takes it first): only then may it act."""
        if self._is_poll:
            return self.take_answer()
        with self._send_lock:
            return not self._sent

    def take_answer(self) -> bool:
        """A poll takes the right to answer once (deleting the parked ResponseURL); False when another has it."""
        with self._send_lock:
            taken = self._taken
        if taken is None:
            taken = self.polling.take_answer(self._event, self._context.get_remaining_time_in_millis() / 1000.0)
            with self._send_lock:
                self._taken = taken
            if taken in (Answer.TAKEN, Answer.LATER):
                self._answered_elsewhere = True
        return taken in (Answer.OURS, Answer.UNKNOWN)

    def _answer_failed(self, event: object, reason: str) -> None:
        """Answer FAILED outside crhelper's flow (an event it cannot run), if the event has an https ResponseURL."""
        fields = event if isinstance(event, dict) else {}
        url = fields.get("ResponseURL")
        if not isinstance(url, str) or not url.startswith("https://"):
            logger.error('{"action": "event.unanswerable", "reason": "no https ResponseURL"}')
            return
        self._event = cast(CloudFormationEvent, fields)
        self._response_url = url
        for name in ("RequestType", "StackId", "RequestId", "LogicalResourceId", "PhysicalResourceId"):
            setattr(self, name, str(fields.get(name, "")))
        self.Data: dict[str, Any] = {}
        self.Status = FAILED
        self.Reason = reason
        self._send()

    def _timeout(self) -> None:
        """crhelper's guard; in a poll only once the poll took the answer (else the next firing answers)."""
        if self._is_poll:
            with self._send_lock:
                taken = self._taken
            if taken in (None, Answer.TAKEN, Answer.LATER):
                log_event(logger, "timeout.left_to_next_firing")
                return
        super()._timeout()

    def _poll_enabled(self) -> bool:
        return self._handoff or self._is_poll

    def _setup_polling(self) -> None:
        """Hand off (crhelper's step, made bounded and provider-scoped); a failure answers FAILED."""
        self._event["CrHelperData"] = self.Data
        self._event["CrHelperPoll"] = True
        try:
            self.polling.start(
                self._event,
                function_name=self._context.function_name,
                lambda_left=self._context.get_remaining_time_in_millis() / 1000.0,
                deadline=self._handoff_deadline,
            )
        except ParkedElsewhereError:
            log_event(logger, "polling.parked_elsewhere", reason="a duplicate delivery of this request waits")
            self._answered_elsewhere = True

    def _remove_polling(self) -> None:
        """A finished poll takes the answer (if it has not yet), then stops the polling."""
        if self._is_poll and (self.take_answer() or self._taken is Answer.TAKEN):
            # An UNKNOWN take tries the parked ResponseURL once more; a TAKEN one leaves it to its taker; a LATER one
            # leaves the whole wait to the next firing.
            self.polling.remove(self._event, parameter=self._taken is Answer.UNKNOWN)
        self._event.pop("CrHelperData", None)
        self.Data.pop("PhysicalResourceId", None)

    def _send(self, status: str | None = None, reason: str = "", send_response: Any = None) -> None:
        with self._send_lock:
            if self._sent or self._answered_elsewhere:
                reason = "answered elsewhere" if self._answered_elsewhere else "already answered in this invocation"
                log_event(logger, "response.suppressed", reason=reason)
                return
            self._sent = True
        if status:
            self.Status, self.Reason = status, reason
        self.Reason = clip_reason(str(self.Reason or ""))
        failed = self.Status == FAILED
        if failed and not self.Reason:
            self.Reason = "Failed without a reason; see the provider's logs"
        event_id = str(self._event.get("PhysicalResourceId") or "")
        if event_id and (failed or self.RequestType == "Delete"):
            self.PhysicalResourceId = event_id  # Update/Delete failures and Deletes keep the id.
        elif failed and self.RequestType == "Create":
            self.PhysicalResourceId = failed_create_id(self.RequestId)
        elif not self.PhysicalResourceId:
            self.PhysicalResourceId = event_id or failed_create_id(self.RequestId)
        if failed or self.RequestType == "Delete":
            self.Data = {}
        fields = ("Status", "StackId", "RequestId", "LogicalResourceId", "Reason", "Data", "NoEcho")  # crhelper's body
        body = fit_response(
            {name: getattr(self, name) for name in fields} | {"PhysicalResourceId": str(self.PhysicalResourceId)}
        )
        self.Data = body["Data"]
        log_event(
            logger,
            "response.sent",
            Status=self.Status,
            PhysicalResourceId=self.PhysicalResourceId,
            Reason=self.Reason,
            TagsTruncated=self.Data.get("TagsTruncated", ""),
        )
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(RESPONSE_SOCKET_TIMEOUT)  # crhelper's HTTPSConnection takes no timeout
        try:
            if send_response is None:
                super()._send()
            else:
                super()._send(None, "", send_response)
        finally:
            socket.setdefaulttimeout(previous)
