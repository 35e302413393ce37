"""crhelper's CfnResource with its unsafe defaults overridden: one complete response per invocation."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any, Literal, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from crhelper import CfnResource
from crhelper.resource_helper import FAILED

from cloudhsm_backup_restore.attributes import fit_response
from cloudhsm_backup_restore.backups import error_code
from cloudhsm_backup_restore.errors import clip_reason
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.polling import response_parameter, rule_name, statement_id

logger = logging.getLogger(__name__)

REQUEST_TYPES = ("Create", "Update", "Delete")
REQUIRED_EVENT_FIELDS = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId")
POLLING_INTERVAL_MINUTES = 1
RequestFunction = Callable[[dict[str, Any], Any], str | None]
RESPONSE_PARAMETER_KEY = "CrHelperResponseParameter"
"""Poll events carry the name of the SSM parameter holding the ResponseURL instead of the URL itself."""
POLLING_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=5)
"""crhelper's EventBridge/Lambda clients default to 60 s timeouts: too long for the hand-off margin."""
CLAIM_CLIENT_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=3, read_timeout=5)
"""One attempt only: a retried RemovePermission would find its own first attempt's removal and stay silent."""
TIMER_MARGIN_SECONDS = 3.0
"""crhelper's guard answers FAILED this long before the Lambda deadline (crhelper: 0.5 s)."""
RESPONSE_SOCKET_TIMEOUT = 10.0
"""Each attempt of crhelper's ResponseURL PUT gives up after this (crhelper sets none)."""


def failed_create_id(request_id: str) -> str:
    """The PhysicalResourceId of a failed Create: not a backup id, so its rollback Delete touches nothing."""
    return f"create-failed-{request_id or 'unknown'}"


def _missing_fields(event: Any) -> list[str]:
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
    """CfnResource made safe for CloudFormation; keeps crhelper's decorators, Data and init_failure.

    Overrides, each for a documented crhelper hazard:
    - INFO-level JSON logs (DEBUG logs the raw event and the presigned ResponseURL);
    - no sleep on Delete (crhelper sleeps up to 120 s);
    - polling only when the handler asks to hand off, so a READY backup answers in one invocation;
    - EventBridge rule names and permission ids that fit any LogicalResourceId (<=64 / <=100 chars);
    - overlapping or duplicate poll invocations answer once (the permission removal is the claim);
    - the ResponseURL never sits in an EventBridge target: an SSM SecureString holds it during a hand-off;
    - exactly one response per invocation, even when crhelper's timeout timer fires too;
    - a response that is always matchable: non-empty PhysicalResourceId, ids copied, Reason clipped at
      the tail (the head says what failed), body fitted to 4096 bytes;
    - a malformed event gets a FAILED response (when it carries a ResponseURL), never a stale one;
    - the ResponseURL's TLS is verified against AWS_CA_BUNDLE when set, as boto3 does.
    """

    def __init__(self) -> None:
        self._send_lock = threading.Lock()
        self._sent = False
        self._handoff = False
        self._answered_elsewhere = False
        self._is_poll = False
        super().__init__(
            json_logging=True,
            log_level="INFO",
            boto_level="WARNING",
            polling_interval=POLLING_INTERVAL_MINUTES,
            sleep_on_delete=0,
            ssl_verify=os.environ.get("AWS_CA_BUNDLE") or None,
        )
        for name in ("botocore", "boto3", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if not self._sam_local and not self._init_failed:
            self._lambda_client = self._aws_client("lambda", POLLING_CLIENT_CONFIG)
            self._events_client = self._aws_client("events", POLLING_CLIENT_CONFIG)
        self._claim_client: Any = None
        self._ssm_client: Any = None

    def _ssm(self) -> Any:
        if self._ssm_client is None:
            self._ssm_client = self._aws_client("ssm", POLLING_CLIENT_CONFIG)
        return self._ssm_client

    def _aws_client(self, service: Literal["lambda", "events", "ssm"], config: Config) -> Any:
        return boto3.client(service, region_name=self._region, verify=self._ssl_verify, config=config)

    def _set_timeout(self) -> None:
        """crhelper's timeout guard, armed TIMER_MARGIN_SECONDS before the deadline so its answer lands."""
        seconds = self._context.get_remaining_time_in_millis() / 1000.0 - TIMER_MARGIN_SECONDS
        self._timer = threading.Timer(max(0.0, seconds), self._timeout)
        self._timer.daemon = True
        self._timer.start()

    # Typed pass-throughs to crhelper's decorators (its stubs are untyped through the Any base).
    def create(self, func: RequestFunction) -> RequestFunction:
        """Register the Create function."""
        return cast(RequestFunction, super().create(func))

    def update(self, func: RequestFunction) -> RequestFunction:
        """Register the Update function."""
        return cast(RequestFunction, super().update(func))

    def delete(self, func: RequestFunction) -> RequestFunction:
        """Register the Delete function."""
        return cast(RequestFunction, super().delete(func))

    def poll_create(self, func: RequestFunction) -> RequestFunction:
        """Register the function each Create poll invocation runs."""
        return cast(RequestFunction, super().poll_create(func))

    def poll_update(self, func: RequestFunction) -> RequestFunction:
        """Register the function each Update poll invocation runs."""
        return cast(RequestFunction, super().poll_update(func))

    def hand_off(self) -> None:
        """Ask crhelper to keep waiting through EventBridge polling instead of answering now."""
        self._handoff = True

    def __call__(self, event: Any, context: Any) -> None:
        with self._send_lock:
            self._sent = False
        self._handoff = False
        self._answered_elsewhere = False
        self._is_poll = isinstance(event, dict) and "CrHelperPoll" in event  # crhelper adds the key mid-hand-off
        if self._is_poll and "ResponseURL" not in event and RESPONSE_PARAMETER_KEY in event:
            url = self._response_url_of(str(event[RESPONSE_PARAMETER_KEY]))
            if url is None:
                return
            event = dict(event, ResponseURL=url)
        missing = _missing_fields(event)
        if missing:
            self._answer_malformed(event, missing)
            return
        super().__call__(event, context)

    def _response_url_of(self, parameter: str) -> str | None:
        """The ResponseURL kept for a handed-off wait; None (stay silent) when it is gone or unreadable."""
        try:
            found = self._ssm().get_parameter(Name=parameter, WithDecryption=True)
            return str(found["Parameter"]["Value"])
        except ClientError as error:
            if error_code(error) == "ParameterNotFound":
                log_event(logger, "polling.answered_elsewhere", reason="response parameter already removed")
            else:
                logger.exception('{"action": "polling.response_url_unreadable"}')
        except BotoCoreError:
            logger.exception('{"action": "polling.response_url_unreadable"}')
        return None

    def _answer_malformed(self, event: Any, missing: list[str]) -> None:
        fields = event if isinstance(event, dict) else {}
        log_event(logger, "event.malformed", missing=missing)
        url = fields.get("ResponseURL")
        if not isinstance(url, str) or not url.startswith("https://"):
            logger.error('{"action": "event.unanswerable", "reason": "no https ResponseURL"}')
            return
        self._event = fields
        self._response_url = url
        self.RequestType = str(fields.get("RequestType", ""))
        self.StackId = str(fields.get("StackId", ""))
        self.RequestId = str(fields.get("RequestId", ""))
        self.LogicalResourceId = str(fields.get("LogicalResourceId", ""))
        self.PhysicalResourceId = str(fields.get("PhysicalResourceId", ""))
        self.Data: dict[str, Any] = {}
        self.Status = FAILED
        self.Reason = "Malformed CloudFormation request: missing or invalid " + ", ".join(missing)
        self._send()

    def _poll_enabled(self) -> bool:
        return self._handoff or self._is_poll

    def _wait_for_cwlogs(self, sleep: Any = None) -> None:
        """crhelper sleeps here on every Delete to let logs flush; Lambda flushes them anyway."""

    def _put_rule(self) -> str:
        response = self._events_client.put_rule(
            Name=rule_name(self._event["LogicalResourceId"]),
            ScheduleExpression=f"rate({POLLING_INTERVAL_MINUTES} minute)",
            State="ENABLED",
        )
        log_event(logger, "polling.started", RuleArn=response["RuleArn"])
        return str(response["RuleArn"])

    def _add_permission(self, rule_arn: str) -> str:
        sid = statement_id(self._event["LogicalResourceId"])
        self._lambda_client.add_permission(
            FunctionName=self._context.function_name,
            StatementId=sid,
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=rule_arn,
        )
        return sid

    def _put_targets(self, func_name: str) -> None:
        """crhelper's target, minus the ResponseURL: the secret waits in an SSM SecureString instead."""
        rule_arn = str(self._event["CrHelperRule"])
        _, partition, _, region, account, resource = rule_arn.split(":", 5)
        rule = resource.split("/")[1]
        parameter = response_parameter(rule)
        self._ssm().put_parameter(Name=parameter, Value=self._event["ResponseURL"], Type="SecureString", Overwrite=True)
        self._event[RESPONSE_PARAMETER_KEY] = parameter
        target_input = {key: value for key, value in self._event.items() if key != "ResponseURL"}
        self._events_client.put_targets(
            Rule=rule,
            Targets=[
                {
                    "Id": "1",
                    "Arn": f"arn:{partition}:lambda:{region}:{account}:function:{func_name}",
                    "Input": json.dumps(target_input),
                }
            ],
        )

    def _delete_response_parameter(self, parameter: str) -> None:
        self._ssm().delete_parameter(Name=parameter)

    def _setup_polling(self) -> None:
        try:
            super()._setup_polling()
        except Exception:
            self._quietly(self._remove_polling)
            raise

    def _remove_polling(self) -> None:
        """Claim the answer, then clean up: the poll that removes the permission is the one that answers.

        EventBridge delivers at least once and polls can overlap; removing a Lambda permission succeeds
        for exactly one caller, so a poll that finds it already gone stays silent instead of answering
        twice. Only a poll invocation can lose the claim, and only on a definite NotFound from a single
        attempt; any other error answers anyway (two identical answers are harmless, none is not).
        """
        if "CrHelperPermission" in self._event:
            if self._is_poll:
                self._claim(self._event["CrHelperPermission"])
            else:
                self._quietly(self._remove_permission, self._event["CrHelperPermission"])
        if "CrHelperRule" in self._event:
            self._quietly(self._remove_targets, self._event["CrHelperRule"])
            self._quietly(self._delete_rule, self._event["CrHelperRule"])
        if RESPONSE_PARAMETER_KEY in self._event:
            self._quietly(self._delete_response_parameter, self._event[RESPONSE_PARAMETER_KEY])
        self._event.pop("CrHelperData", None)
        self.Data.pop("PhysicalResourceId", None)
        log_event(logger, "polling.stopped")

    def _claim(self, sid: str) -> None:
        if self._claim_client is None:
            self._claim_client = self._aws_client("lambda", CLAIM_CLIENT_CONFIG)
        try:
            self._claim_client.remove_permission(FunctionName=self._context.function_name, StatementId=sid)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                self._answered_elsewhere = True
                log_event(logger, "polling.answered_elsewhere")
            else:
                log_event(logger, "polling.cleanup_skipped", error=str(error)[:200])
        except BotoCoreError as error:
            log_event(logger, "polling.cleanup_skipped", error=str(error)[:200])

    @staticmethod
    def _quietly(action: Any, *args: Any) -> None:
        """Clean-up that must not turn a finished restore into FAILED: a duplicate poll may have done it."""
        try:
            action(*args)
        except (ClientError, BotoCoreError, KeyError, IndexError) as error:
            log_event(logger, "polling.cleanup_skipped", error=str(error)[:200])

    def _send(self, status: str | None = None, reason: str = "", send_response: Any = None) -> None:
        with self._send_lock:
            if self._sent or self._answered_elsewhere:
                reason = "another poll answered" if self._answered_elsewhere else "already answered in this invocation"
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
        body = fit_response(
            {
                "Status": self.Status,
                "PhysicalResourceId": str(self.PhysicalResourceId),
                "StackId": self.StackId,
                "RequestId": self.RequestId,
                "LogicalResourceId": self.LogicalResourceId,
                "Reason": self.Reason,
                "Data": self.Data,
                "NoEcho": self.NoEcho,
            }
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
