"""The polling hand-off: park the ResponseURL, schedule the poll rule, take the answer, end the wait.

One wait per resource, named after the provider, the stack and the logical id (docs/handoff.md); every call has a
bounded worst case (HANDOFF_CLIENT_CONFIG), so crhelper's timeout guard never fires on a half-made hand-off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cloudhsm_backup_restore.backups import RETRIED_CODES, error_code
from cloudhsm_backup_restore.errors import BackupRestoreError
from cloudhsm_backup_restore.event import CloudFormationEvent
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.waiting import WaitPolicy

logger = logging.getLogger(__name__)

POLL_RULE_PREFIX = "cloudhsm-poll-"
RESPONSE_PARAMETER_PREFIX = "/cloudhsm-restore/"
"""The ResponseURL waits in an SSM SecureString, not in the target's Input (events:ListTargetsByRule, CloudTrail)."""
PROVIDER_ID_ENV = "CLOUDHSM_RESTORE_PROVIDER_ID"
"""Set at deploy time to an id unique to one provider (contract.provider_id_expression); rule and parameter names,
the IAM grants and the one invoke permission carry it, so two providers never touch each other's waits."""
PROVIDER_ID_PATTERN = re.compile(r"[a-z0-9]{1,12}")
RULE_NAME_LIMIT = 64
"""EventBridge rule names: at most 64 characters of [.-_A-Za-z0-9]."""
STACK_DIGEST_LENGTH = 8

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
LAST_CHECK_RESERVE = 15.0
"""Part of the margin left for what runs between the end of the in-process wait and the hand-off's first call."""
TRANSIENT_CODES = RETRIED_CODES | {"ThrottledException", "TooManyRequestsException", "InternalServerError"}
GONE_CODES = ("ResourceNotFoundException", "ParameterNotFound")


def call_worst_case(attempts: int, connect_timeout: float, read_timeout: float) -> float:
    """Seconds one call can take in botocore's standard mode: every attempt times out, every backoff is maximal."""
    backoffs = sum(min(2.0**i, MAX_BACKOFF) + RETRY_AFTER_EXTRA for i in range(attempts - 1))
    return attempts * (connect_timeout + read_timeout) + backoffs


def handoff_client_settings(margin: float) -> tuple[int, float, float]:
    """(max_attempts, connect_timeout, read_timeout): the most attempts whose worst case fits the margin."""
    per_call = (margin - LAST_CHECK_RESERVE - TIMER_MARGIN_SECONDS - RESPONSE_SOCKET_TIMEOUT) / HANDOFF_CALLS
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
"""SSM and EventBridge clients (crhelper's default 60 s timeouts would overrun the margin)."""


def poll_rule_prefix(provider_id: str) -> str:
    """The prefix of every EventBridge rule one provider creates (IAM and the invoke permission name it + '*')."""
    return f"{POLL_RULE_PREFIX}{provider_id}-"


def response_parameter_prefix(provider_id: str) -> str:
    """The SSM path under which one provider parks ResponseURLs (IAM names it + '*')."""
    return f"{RESPONSE_PARAMETER_PREFIX}{provider_id}/"


def configured_provider_id() -> str | None:
    """This provider's id from PROVIDER_ID_ENV; None when unset or malformed (the hand-off then refuses)."""
    value = os.environ.get(PROVIDER_ID_ENV, "")
    return value if PROVIDER_ID_PATTERN.fullmatch(value) else None


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def rule_name(provider_id: str, stack_id: str, logical_id: str) -> str:
    """The one poll rule of a resource: provider prefix, the logical id (cut, with a hash, to fit), stack digest."""
    prefix = poll_rule_prefix(provider_id)
    suffix = "-" + _digest(stack_id, STACK_DIGEST_LENGTH)
    room = RULE_NAME_LIMIT - len(prefix) - len(suffix)
    short = logical_id if len(logical_id) <= room else logical_id[: room - 9] + "-" + _digest(logical_id, 8)
    return prefix + short + suffix


def response_parameter(provider_id: str, rule: str) -> str:
    """The SSM parameter holding the ResponseURL of the wait that EventBridge rule ``rule`` polls."""
    return response_parameter_prefix(provider_id) + rule


def is_transient(error: Exception) -> bool:
    """Throttling, a server error or an unreachable endpoint: the next firing may succeed."""
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error_code(error) in TRANSIENT_CODES or status >= 500
    return isinstance(error, BotoCoreError)


class ParkedElsewhereError(BackupRestoreError):
    """Another delivery of the same request already parked this wait: that delivery's polls answer."""


class Answer(Enum):
    """Who answers a finished wait: the poll that deleted the parked ResponseURL (OURS); TAKEN: another poll or the
    Delete did (stay silent); UNKNOWN: the deletion failed (answer: two beat none); LATER: too little Lambda time left
    to delete it and still answer (a kill would strand it, I4): touch nothing, the next firing answers."""

    OURS = "ours"
    TAKEN = "taken"
    UNKNOWN = "unknown"
    LATER = "later"


TAKE_ANSWER_RESERVE = HANDOFF_WORST_CASE / HANDOFF_CALLS + TIMER_MARGIN_SECONDS  # DeleteParameter, then the timer


class PollingHandOff:
    """The SSM parameter, EventBridge rule and target of one resource's wait; clients made on demand."""

    def __init__(self, client_for: Callable[[str], Any], now: Callable[[], float] = time.time) -> None:
        self.client_for = client_for
        self.now = now
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client_for(service)
        return self._clients[service]

    def start(self, event: CloudFormationEvent, *, function_name: str, lambda_left: float, deadline: float) -> None:
        """Park the ResponseURL and schedule polls (at most HANDOFF_CALLS calls); a failure undoes what was made and
        answers FAILED. A parameter holding this very ResponseURL is a duplicate delivery's: ParkedElsewhereError."""
        provider_id = configured_provider_id()
        if provider_id is None:
            raise BackupRestoreError(
                f"Cannot hand the wait off to polling: environment variable {PROVIDER_ID_ENV} is unset or not "
                "1-12 lowercase letters and digits; deploy the provider from the current template or construct"
            )
        if lambda_left < HANDOFF_WORST_CASE + TIMER_MARGIN_SECONDS:  # a half-made hand-off would answer nothing
            raise BackupRestoreError(
                f"Cannot hand the wait off to polling: {lambda_left:.0f} s of Lambda time left, a hand-off may need "
                f"{HANDOFF_WORST_CASE + TIMER_MARGIN_SECONDS:.0f} s"
            )
        rule = rule_name(provider_id, str(event["StackId"]), str(event["LogicalResourceId"]))
        parameter = response_parameter(provider_id, rule)
        ssm, events = self.client("ssm"), self.client("events")
        made: list[str] = []
        step = "ssm:PutParameter"
        try:
            try:
                ssm.put_parameter(Name=parameter, Value=event["ResponseURL"], Type="SecureString", Overwrite=False)
            except ClientError as error:
                if error_code(error) != "ParameterAlreadyExists":
                    raise
                if self.response_url(parameter) == event["ResponseURL"]:
                    raise ParkedElsewhereError("another delivery of this request parked the wait") from error
                raise  # an earlier wait's parameter that could not be removed: FAILED; the resource's Delete removes it
            made.append("parameter")
            step = "events:PutRule"
            rule_arn = str(
                events.put_rule(
                    Name=rule,
                    ScheduleExpression=f"rate({WaitPolicy().poll_interval / 60:.0f} minute)",  # WaitPolicy: 60 s
                    State="ENABLED",
                    Description="cloudhsm-backup-restore poll; stale after "
                    + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline)),
                )["RuleArn"]
            )
            made.append("rule")
            event.update(
                {
                    "CrHelperRule": rule_arn,
                    "CrHelperResponseParameter": parameter,
                    "CloudHsmRestorePollDeadline": deadline,
                }
            )
            step = "events:PutTargets"
            _, partition, _, region, account, _ = rule_arn.split(":", 5)
            target = {  # this function, with the event minus the ResponseURL (a secret) as Input
                "Id": "1",
                "Arn": f"arn:{partition}:lambda:{region}:{account}:function:{function_name}",
                "Input": json.dumps({key: value for key, value in event.items() if key != "ResponseURL"}),
            }
            _raise_failed_entry(events.put_targets(Rule=rule, Targets=[target]), "PutTargets")
        except (ClientError, BotoCoreError) as error:
            # A PutTargets that timed out may still have added the target: then DeleteRule fails, the rule fires,
            # and that poll, finding the parameter gone, removes target and rule (``admit``).
            if "rule" in made:
                _quietly("events:DeleteRule", events.delete_rule, Name=rule)
            if "parameter" in made:
                _quietly("ssm:DeleteParameter", ssm.delete_parameter, Name=parameter)
            event.pop("CrHelperRule", None)
            event.pop("CrHelperResponseParameter", None)
            event.pop("CloudHsmRestorePollDeadline", None)
            raise BackupRestoreError(
                f"Could not hand the wait off to EventBridge polling: {step} failed: {error}"
            ) from error
        log_event(logger, "polling.started", Rule=rule, Deadline=deadline)

    def response_url(self, parameter: str) -> str:
        """The parked ResponseURL; raises the SSM error (ParameterNotFound: the wait was answered or ended)."""
        found = self.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
        return str(found["Parameter"]["Value"])

    def admit(self, event: CloudFormationEvent) -> CloudFormationEvent | None:
        """The poll event with its ResponseURL read back; None when this poll stops here (after tearing down):
        past the deadline, a wait already answered or ended, or a ResponseURL that cannot be read."""
        deadline = event.get("CloudHsmRestorePollDeadline")
        if deadline is not None and self.now() >= deadline:
            log_event(logger, "polling.past_deadline", Deadline=deadline)  # CloudFormation stopped waiting
            self.remove(event)
            return None
        try:
            url = self.response_url(str(event.get("CrHelperResponseParameter")))
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and error_code(error) == "ParameterNotFound":
                log_event(logger, "polling.ended_elsewhere", reason="response parameter already removed")
                self.remove(event, parameter=False)
            elif is_transient(error):
                log_event(logger, "polling.response_url_unreadable", retry="next firing", error=str(error)[:200])
            else:
                log_event(logger, "polling.stopped_unanswerable", error=str(error)[:200])
                self.remove(event)
            return None
        return {**event, "ResponseURL": url}

    def take_answer(self, event: CloudFormationEvent, lambda_left: float) -> Answer:
        """Delete the parked ResponseURL: exactly one poll succeeds, and that poll acts and answers."""
        if lambda_left < TAKE_ANSWER_RESERVE:
            log_event(logger, "polling.answer_left_to_next_firing", LambdaLeft=round(lambda_left, 1))
            return Answer.LATER
        try:
            self.client("ssm").delete_parameter(Name=str(event["CrHelperResponseParameter"]))
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and error_code(error) == "ParameterNotFound":
                log_event(logger, "polling.answered_elsewhere")
                return Answer.TAKEN
            log_event(logger, "polling.take_answer_failed", error=str(error)[:200])
            return Answer.UNKNOWN
        return Answer.OURS

    def remove(self, event: CloudFormationEvent, *, parameter: bool = True) -> bool:
        """Stop a poll event's wait: the parked ResponseURL (unless ``parameter`` is False), the target, then the rule
        (EventBridge refuses to delete a rule with targets). True when all is gone; what fails stays for later."""
        rule = str(event.get("CrHelperRule") or "").rsplit("/", 1)[-1]
        name = str(event.get("CrHelperResponseParameter") or "")
        return self._remove(rule, name if parameter else "")

    def end(self, stack_id: str, logical_id: str) -> None:
        """A Delete ends its resource's wait, if any (I3): parameter, target and rule; raises if it cannot."""
        provider_id = configured_provider_id()
        if provider_id is None:
            return  # this provider never hands off, so no wait of its exists
        rule = rule_name(provider_id, stack_id, logical_id)
        if not self._remove(rule, response_parameter(provider_id, rule)):
            raise BackupRestoreError(f"Could not end this resource's polling (rule {rule}); retry the deletion")

    def _remove(self, rule: str, parameter: str) -> bool:
        events = self.client("events")

        def remove_targets() -> None:
            # RemoveTargets "can partially fail if too many requests are made at the same time", reporting
            # FailedEntryCount (EventBridge API reference, RemoveTargets).
            _raise_failed_entry(events.remove_targets(Rule=rule, Ids=["1"]), "RemoveTargets")

        done = not parameter or _quietly("ssm:DeleteParameter", self.client("ssm").delete_parameter, Name=parameter)
        if rule and _quietly("events:RemoveTargets", remove_targets):
            done = _quietly("events:DeleteRule", events.delete_rule, Name=rule) and done
        else:
            done = not rule and done
        log_event(logger, "polling.stopped" if done else "polling.stop_incomplete", Rule=rule)
        return done


def _raise_failed_entry(answer: dict[str, Any], operation: str) -> None:
    if answer.get("FailedEntryCount"):
        entry = (answer.get("FailedEntries") or [{}])[0]
        code, message = str(entry.get("ErrorCode", "FailedEntry")), str(entry.get("ErrorMessage", ""))
        raise ClientError({"Error": {"Code": code, "Message": message}}, operation)


def _quietly(what: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Clean-up that must not turn an answer into FAILED; gone already counts as done. True when done."""
    try:
        action(*args, **kwargs)
    except (ClientError, BotoCoreError) as error:
        if isinstance(error, ClientError) and error_code(error) in GONE_CODES:
            return True
        log_event(logger, "polling.cleanup_failed", call=what, error=str(error)[:200])
        return False
    return True
