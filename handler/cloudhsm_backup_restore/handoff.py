"""The polling hand-off's AWS side: park the ResponseURL, schedule the poll rule, claim the answer, tear down.

Every call here has a bounded worst case (HANDOFF_CLIENT_CONFIG, derived from the wait policy's hand-off
margin), so crhelper's timeout guard never fires on a half-done hand-off.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cloudhsm_backup_restore.backups import RETRIED_CODES, error_code
from cloudhsm_backup_restore.errors import BackupRestoreError
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.polling import (
    LEGACY_PERMISSION_KEY,
    POLL_DEADLINE_KEY,
    POLL_FORMAT,
    POLL_FORMAT_KEY,
    POLL_SWEEP_KEY,
    RESPONSE_PARAMETER_KEY,
    response_parameter,
    rule_name,
    rule_of,
)
from cloudhsm_backup_restore.waiting import WaitPolicy

logger = logging.getLogger(__name__)

POLLING_INTERVAL_MINUTES = 1
TIMER_MARGIN_SECONDS = 3.0
"""crhelper's guard answers FAILED this long before the Lambda deadline (crhelper: 0.5 s)."""
RESPONSE_SOCKET_TIMEOUT = 10.0
"""Each attempt of crhelper's ResponseURL PUT gives up after this (crhelper sets none)."""
HANDOFF_CALLS = 5
"""The longest chain of calls while handing off: PutParameter, PutRule, PutTargets failing, then DeleteRule and
DeleteParameter undoing the half-made hand-off (the FAILED answer follows)."""
CONNECT_TIMEOUT = 1.0
MAX_BACKOFF = 20.0
"""botocore standard mode: attempt i (0-based) sleeps rand * min(2**i, 20) s when throttled ..."""
RETRY_AFTER_EXTRA = 5.0
"""... raised by an x-amz-retry-after header to at most 5 s more (botocore/retries/standard.py)."""


def call_worst_case(attempts: int, connect_timeout: float, read_timeout: float) -> float:
    """Seconds one call can take in botocore's standard mode: every attempt times out, every backoff is maximal."""
    backoffs = sum(min(2.0**i, MAX_BACKOFF) + RETRY_AFTER_EXTRA for i in range(attempts - 1))
    return attempts * (connect_timeout + read_timeout) + backoffs


def handoff_client_settings(margin: float) -> tuple[int, float, float]:
    """(max_attempts, connect_timeout, read_timeout): the most attempts whose worst case fits the margin."""
    per_call = (margin - TIMER_MARGIN_SECONDS - RESPONSE_SOCKET_TIMEOUT) / HANDOFF_CALLS
    for attempts in (4, 3, 2, 1):
        read = (per_call - call_worst_case(attempts, 0.0, 0.0)) / attempts - CONNECT_TIMEOUT
        if read >= 1.0:
            return attempts, CONNECT_TIMEOUT, int(read * 10) / 10
    raise ValueError(f"a hand-off margin of {margin} s leaves no time for {HANDOFF_CALLS} calls")


HANDOFF_ATTEMPTS, HANDOFF_CONNECT_TIMEOUT, HANDOFF_READ_TIMEOUT = handoff_client_settings(WaitPolicy().handoff_margin)
HANDOFF_WORST_CASE = HANDOFF_CALLS * call_worst_case(HANDOFF_ATTEMPTS, HANDOFF_CONNECT_TIMEOUT, HANDOFF_READ_TIMEOUT)
"""What the hand-off's calls can take at worst; a hand-off starts only with this much Lambda time left."""
HANDOFF_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": HANDOFF_ATTEMPTS},  # max_attempts would not count the first
    connect_timeout=HANDOFF_CONNECT_TIMEOUT,
    read_timeout=HANDOFF_READ_TIMEOUT,
)
"""SSM, EventBridge and Lambda clients (crhelper's default 60 s timeouts would overrun the margin)."""
TRANSIENT_CODES = RETRIED_CODES | {"ThrottledException", "TooManyRequestsException", "InternalServerError"}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class HandOffError(BackupRestoreError):
    """The wait could not be handed off to EventBridge polling (the resource answers FAILED instead)."""


class Claim(Enum):
    """Who answers a finished wait: the poll that deleted the parked ResponseURL."""

    OWNED = "owned"
    LOST = "lost"
    """Another poll deleted it first: it answered, this one stays silent."""
    UNKNOWN = "unknown"
    """The deletion failed: answer anyway (two identical answers are harmless, none is not); sweep later."""


def is_transient(error: Exception) -> bool:
    """Throttling, a server error or an unreachable endpoint: the next firing may succeed."""
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error_code(error) in TRANSIENT_CODES or status >= 500
    return isinstance(error, BotoCoreError)


class PollingHandOff:
    """The SSM parameter, EventBridge rule and target of one wait; clients made on demand by ``client_for``."""

    def __init__(self, client_for: Callable[[str], Any], now: Callable[[], float] = time.time) -> None:
        self.client_for = client_for
        self.now = now
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """The client for ``service`` (events, ssm, lambda), created once."""
        if service not in self._clients:
            self._clients[service] = self.client_for(service)
        return self._clients[service]

    def start(self, event: dict[str, Any], *, function_name: str, provider_id: str, deadline: float) -> None:
        """Park the ResponseURL and schedule polls; on failure undo what was made and raise HandOffError."""
        rule = rule_name(provider_id, str(event["LogicalResourceId"]))
        parameter = response_parameter(provider_id, rule)
        made: list[str] = []
        step = "ssm:PutParameter"
        try:
            self.client("ssm").put_parameter(
                Name=parameter, Value=event["ResponseURL"], Type="SecureString", Overwrite=False
            )
            made.append("parameter")
            step = "events:PutRule"
            rule_arn = str(
                self.client("events").put_rule(
                    Name=rule,
                    ScheduleExpression=f"rate({POLLING_INTERVAL_MINUTES} minute)",
                    State="ENABLED",
                    Description=f"cloudhsm-backup-restore poll; stale after {_iso(deadline)}",
                )["RuleArn"]
            )
            made.append("rule")
            event.update(
                {
                    "CrHelperRule": rule_arn,
                    RESPONSE_PARAMETER_KEY: parameter,
                    POLL_FORMAT_KEY: POLL_FORMAT,
                    POLL_DEADLINE_KEY: deadline,
                }
            )
            step = "events:PutTargets"
            self._put_target(event, function_name)
        except (ClientError, BotoCoreError) as error:
            if "rule" in made:
                self._quietly("events:DeleteRule", self.client("events").delete_rule, Name=rule)
            if "parameter" in made:
                self._quietly("ssm:DeleteParameter", self.client("ssm").delete_parameter, Name=parameter)
            for key in ("CrHelperRule", RESPONSE_PARAMETER_KEY, POLL_FORMAT_KEY, POLL_DEADLINE_KEY):
                event.pop(key, None)
            raise HandOffError(f"Could not hand the wait off to EventBridge polling: {step} failed: {error}") from error
        log_event(logger, "polling.started", Rule=rule, Deadline=deadline)

    def _put_target(self, event: dict[str, Any], function_name: str) -> None:
        """The rule's one target: this function, with the event minus the ResponseURL (a secret) as Input."""
        rule_arn = str(event["CrHelperRule"])
        _, partition, _, region, account, _ = rule_arn.split(":", 5)
        target_input = {key: value for key, value in event.items() if key != "ResponseURL"}
        answer = self.client("events").put_targets(
            Rule=rule_of(rule_arn),
            Targets=[
                {
                    "Id": "1",
                    "Arn": f"arn:{partition}:lambda:{region}:{account}:function:{function_name}",
                    "Input": json.dumps(target_input),
                }
            ],
        )
        if answer.get("FailedEntryCount"):
            entry = (answer.get("FailedEntries") or [{}])[0]
            code, message = str(entry.get("ErrorCode", "FailedEntry")), str(entry.get("ErrorMessage", ""))
            raise ClientError({"Error": {"Code": code, "Message": message}}, "PutTargets")

    def read_response_url(self, event: dict[str, Any]) -> str:
        """The parked ResponseURL; raises the SSM error (ParameterNotFound: another poll answered)."""
        found = self.client("ssm").get_parameter(Name=str(event[RESPONSE_PARAMETER_KEY]), WithDecryption=True)
        return str(found["Parameter"]["Value"])

    def claim(self, event: dict[str, Any]) -> Claim:
        """Delete the parked ResponseURL: exactly one poll succeeds, and that poll answers."""
        parameter = event.get(RESPONSE_PARAMETER_KEY)
        if not parameter:
            return Claim.UNKNOWN
        try:
            self.client("ssm").delete_parameter(Name=str(parameter))
        except ClientError as error:
            if error_code(error) == "ParameterNotFound":
                log_event(logger, "polling.answered_elsewhere")
                return Claim.LOST
            log_event(logger, "polling.claim_failed", error=str(error)[:200])
            return Claim.UNKNOWN
        except BotoCoreError as error:
            log_event(logger, "polling.claim_failed", error=str(error)[:200])
            return Claim.UNKNOWN
        return Claim.OWNED

    def stop(self, event: dict[str, Any], *, parameter_left: bool = False, function_name: str = "") -> None:
        """Stop the polls: remove the target, then the rule (and then a format 1 wait's own permission).

        What cannot be removed now is left to a later firing: a target that stays fires again (and that poll
        finds the parameter gone or the deadline passed); a rule whose deletion failed, or a ResponseURL that
        could not be deleted (``parameter_left``), gets a sweep-only target whose next firing finishes the job.
        """
        rule_arn = str(event.get("CrHelperRule") or "")
        if rule_arn and not parameter_left:
            rule = rule_of(rule_arn)
            # DeleteRule refuses a rule that still has targets (EventBridge API reference, DeleteRule).
            if not self._quietly("events:RemoveTargets", self._remove_target, rule):
                log_event(logger, "polling.stop_deferred", reason="the target stays: its next firing retries")
                return
            if self._quietly("events:DeleteRule", self.client("events").delete_rule, Name=rule):
                rule_arn = ""
        if rule_arn and self._sweep(event, function_name):
            return
        if LEGACY_PERMISSION_KEY in event and function_name:
            self._quietly(
                "lambda:RemovePermission",
                self.client("lambda").remove_permission,
                FunctionName=function_name,
                StatementId=str(event[LEGACY_PERMISSION_KEY]),
            )
        log_event(logger, "polling.stopped")

    def _remove_target(self, rule: str) -> None:
        """RemoveTargets, failing when its entry failed: it "can partially fail if too many requests are made at
        the same time", reporting FailedEntryCount (EventBridge API reference, RemoveTargets)."""
        answer = self.client("events").remove_targets(Rule=rule, Ids=["1"])
        if answer.get("FailedEntryCount"):
            entry = (answer.get("FailedEntries") or [{}])[0]
            code, message = str(entry.get("ErrorCode", "FailedEntry")), str(entry.get("ErrorMessage", ""))
            raise ClientError({"Error": {"Code": code, "Message": message}}, "RemoveTargets")

    def _sweep(self, event: dict[str, Any], function_name: str) -> bool:
        """Point the rule at a sweep-only target (before the deadline only, so no firing comes after it)."""
        deadline = float(event.get(POLL_DEADLINE_KEY) or 0.0)
        if not function_name or LEGACY_PERMISSION_KEY in event or not deadline or self.now() >= deadline:
            log_event(logger, "polling.left_behind", Rule=event.get("CrHelperRule"))
            return False
        sweep = dict(event, **{POLL_SWEEP_KEY: True})
        sweep.pop("ResponseURL", None)
        if not self._quietly("events:PutTargets", self._put_target, sweep, function_name):
            return False
        log_event(logger, "polling.sweep_scheduled")
        return True

    def tear_down(self, event: dict[str, Any], function_name: str) -> None:
        """Remove everything this wait made, the parked ResponseURL included (nothing will answer)."""
        parameter = event.get(RESPONSE_PARAMETER_KEY)
        deleted = not parameter or self._quietly(
            "ssm:DeleteParameter", self.client("ssm").delete_parameter, Name=str(parameter)
        )
        self.stop(event, parameter_left=not deleted, function_name=function_name)

    @staticmethod
    def _quietly(what: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Clean-up that must not turn an answer into FAILED; gone already counts as done. True when done."""
        try:
            action(*args, **kwargs)
        except ClientError as error:
            if error_code(error) in ("ResourceNotFoundException", "ParameterNotFound"):
                return True
            log_event(logger, "polling.cleanup_failed", call=what, error=str(error)[:200])
            return False
        except BotoCoreError as error:
            log_event(logger, "polling.cleanup_failed", call=what, error=str(error)[:200])
            return False
        return True
