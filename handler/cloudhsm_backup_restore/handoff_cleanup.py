"""Stopping the polls of one wait and removing what it made, retried or swept when a call fails.

What cannot be removed at once is left to a later firing of the wait's own rule: a target that stays fires
again; a rule whose DeleteRule failed (a target-less rule never fires again) or a ResponseURL that could not be
deleted gets a sweep-only target. Past the deadline no firing may come, so the invocation retries itself.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cloudhsm_backup_restore.backups import error_code
from cloudhsm_backup_restore.logs import log_event
from cloudhsm_backup_restore.polling import (
    LEGACY_PERMISSION_KEY,
    POLL_DEADLINE_KEY,
    POLL_SWEEP_KEY,
    RESPONSE_PARAMETER_KEY,
    poll_deadline,
    rule_of,
)

logger = logging.getLogger(__name__)

CLEANUP_PAUSES = (2.0, 4.0, 8.0, 16.0)
"""Pauses between clean-up retries past the deadline, when no later firing of the rule may retry them."""
CLEANUP_RESERVE = 30.0
"""Lambda time kept back when retrying clean-up (the calls' own worst case, crhelper's timer)."""


class PollCleanup:
    """Clients made on demand by ``client_for``; the clean-up of a wait's rule, target and parameter."""

    def __init__(
        self,
        client_for: Callable[[str], Any],
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client_for = client_for
        self.now = now
        self.sleep = sleep
        self.time_left: Callable[[], float] = lambda: 0.0
        """Seconds of Lambda time left (set per invocation): bounds the clean-up retried past the deadline."""
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """The client for ``service`` (events, ssm, lambda), created once."""
        if service not in self._clients:
            self._clients[service] = self.client_for(service)
        return self._clients[service]

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

    def stop(self, event: dict[str, Any], *, parameter_left: bool = False, function_name: str = "") -> None:
        """Stop the polls: remove the target, then the rule (and then a format 1 wait's own permission).

        What cannot be removed now is left to a later firing: a target that stays fires again (and that poll
        finds the parameter gone or the deadline passed); a rule whose deletion failed, or a ResponseURL that
        could not be deleted (``parameter_left``), gets a sweep-only target whose next firing finishes the job.
        """
        rule_arn = str(event.get("CrHelperRule") or "")
        legacy = LEGACY_PERMISSION_KEY in event  # no sweep for a previous-release wait: remove what can be removed
        deadline = poll_deadline(event)
        past_deadline = deadline is not None and self.now() >= deadline  # no sweep may fire then: remove the rule
        if rule_arn and (not parameter_left or legacy or past_deadline):
            rule = rule_of(rule_arn)
            # DeleteRule refuses a rule that still has targets (EventBridge API reference, DeleteRule).
            if not self._clean(event, "events:RemoveTargets", self._remove_target, rule):
                log_event(logger, "polling.stop_deferred", reason="the target stays: its next firing retries")
                return
            if self._clean(event, "events:DeleteRule", self.client("events").delete_rule, Name=rule):
                rule_arn = ""
        if rule_arn and self._sweep(event, function_name):
            return
        if legacy and function_name:
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
        deleted = not parameter or self._clean(
            event, "ssm:DeleteParameter", self.client("ssm").delete_parameter, Name=str(parameter)
        )
        self.stop(event, parameter_left=not deleted, function_name=function_name)

    def _clean(self, event: dict[str, Any], what: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """One clean-up call; past the deadline (no later firing may fix it) retried while Lambda time allows."""
        deadline = poll_deadline(event)
        pauses = CLEANUP_PAUSES if deadline is not None and self.now() >= deadline else ()
        for pause in (*pauses, None):
            if self._quietly(what, action, *args, **kwargs):
                return True
            if pause is None or self.time_left() < pause + CLEANUP_RESERVE:
                return False
            self.sleep(pause)
        return False  # pragma: no cover - the loop returns on its last pass

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
