"""The polling hand-off's AWS side: park the ResponseURL, schedule the poll rule, claim the answer, tear down.

Every call here has a bounded worst case (HANDOFF_CLIENT_CONFIG, derived from the wait policy's hand-off
margin), so crhelper's timeout guard never fires on a half-done hand-off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cloudhsm_backup_restore.backups import RETRIED_CODES, error_code
from cloudhsm_backup_restore.errors import BackupRestoreError
from cloudhsm_backup_restore.handoff_budget import (
    HANDOFF_ATTEMPTS,
    HANDOFF_CALLS,
    HANDOFF_CLIENT_CONFIG,
    HANDOFF_CONNECT_TIMEOUT,
    HANDOFF_READ_TIMEOUT,
    HANDOFF_WORST_CASE,
    POLLING_INTERVAL_MINUTES,
    RESPONSE_SOCKET_TIMEOUT,
    TIMER_MARGIN_SECONDS,
    call_worst_case,
    handoff_client_settings,
)
from cloudhsm_backup_restore.handoff_cleanup import PollCleanup
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.polling import (
    ACCEPTED_POLL_FORMATS,
    POLL_DEADLINE_KEY,
    POLL_FORMAT,
    POLL_FORMAT_KEY,
    POLL_SWEEP_KEY,
    RESPONSE_PARAMETER_KEY,
    poll_deadline,
    poll_format,
    response_parameter,
    rule_name,
)

logger = logging.getLogger(__name__)
__all__ = [
    "HANDOFF_ATTEMPTS",
    "HANDOFF_CALLS",
    "HANDOFF_CLIENT_CONFIG",
    "HANDOFF_CONNECT_TIMEOUT",
    "HANDOFF_READ_TIMEOUT",
    "HANDOFF_WORST_CASE",
    "POLLING_INTERVAL_MINUTES",
    "RESPONSE_SOCKET_TIMEOUT",
    "TIMER_MARGIN_SECONDS",
    "Claim",
    "HandOffError",
    "PollingHandOff",
    "call_worst_case",
    "handoff_client_settings",
    "is_transient",
]

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


class PollingHandOff(PollCleanup):
    """The SSM parameter, EventBridge rule and target of one wait: set up, admit a poll, claim the answer."""

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
            # A PutTargets that timed out may still have added the target: then DeleteRule fails, the rule fires,
            # and that poll, finding the parameter gone, removes target and rule (PollingHandOff.admit).
            if "rule" in made:
                self._quietly("events:DeleteRule", self.client("events").delete_rule, Name=rule)
            if "parameter" in made:
                self._quietly("ssm:DeleteParameter", self.client("ssm").delete_parameter, Name=parameter)
            for key in ("CrHelperRule", RESPONSE_PARAMETER_KEY, POLL_FORMAT_KEY, POLL_DEADLINE_KEY):
                event.pop(key, None)
            raise HandOffError(f"Could not hand the wait off to EventBridge polling: {step} failed: {error}") from error
        log_event(logger, "polling.started", Rule=rule, Deadline=deadline)

    def admit(
        self, event: dict[str, Any], function_name: str, answer_failed: Callable[[dict[str, Any], str], None]
    ) -> dict[str, Any] | None:
        """The poll event with its ResponseURL read back; None when this poll stops here (after tearing down).

        Sweeps, polls past the deadline, unreadable ResponseURLs and poll formats this release does not run stop
        here; ``answer_failed(event, reason)`` answers when the ResponseURL is readable but the poll cannot run.
        """
        if event.get(POLL_SWEEP_KEY):
            log_event(logger, "polling.sweep")
            self.tear_down(event, function_name)
            return None
        deadline = poll_deadline(event)
        if deadline is not None and self.now() >= deadline:
            log_event(logger, "polling.past_deadline", Deadline=deadline)  # CloudFormation stopped waiting
            self.tear_down(event, function_name)
            return None
        if RESPONSE_PARAMETER_KEY not in event:
            return event  # crhelper's own format (ResponseURL in the target): answer and clean up as usual
        try:
            url = self.read_response_url(event)
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and error_code(error) == "ParameterNotFound":
                log_event(logger, "polling.answered_elsewhere", reason="response parameter already removed")
                self.stop(event, function_name=function_name)
            elif is_transient(error):
                log_event(logger, "polling.response_url_unreadable", retry="next firing", error=str(error)[:200])
            else:
                log_event(logger, "polling.stopped_unanswerable", error=str(error)[:200])
                self.tear_down(event, function_name)
            return None
        event = dict(event, ResponseURL=url)
        version = poll_format(event)
        if version not in ACCEPTED_POLL_FORMATS:
            claim = self.claim(event)
            if claim is not Claim.LOST:
                answer_failed(
                    event,
                    f"The provider was changed while this resource waited: its poll event has format {version}, "
                    f"this release runs formats {', '.join(map(str, ACCEPTED_POLL_FORMATS))}. Polling stopped; "
                    "retry the stack operation (the restore itself is unaffected)",
                )
            self.stop(event, parameter_left=claim is Claim.UNKNOWN, function_name=function_name)
            return None
        return event

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
