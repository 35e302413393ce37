"""The scheduler half of the offline EventBridge: it lists the rules and fires each scheduled target on the clock.

A firing invokes the target function asynchronously with the target's ``Input`` as the event, provided the
function's resource policy lets ``events.amazonaws.com`` invoke it for that rule (an ArnLike SourceArn, which may
name a prefix with a wildcard). A rule without targets fires into nothing, as in EventBridge.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from cloudhsm_offline.cfn.lambda_runtime import Invocation, LambdaFunction
from cloudhsm_offline.clock import SimClock


@dataclass
class Firing:
    """One scheduled firing of a rule's target (or why it could not fire)."""

    rule: str
    modelled: float
    real: float
    invocation: Invocation | None
    problem: str | None = None


@dataclass
class RuleState:
    """A scheduled rule the scheduler tracks."""

    name: str
    arn: str
    period: float
    created: float
    next_fire: float
    fired: int = 0
    removed: float | None = None


class RuleScheduler:
    """Fires the scheduled rules of an offline EventBridge (mixed into ``EventBridge``, which owns the state)."""

    clock: SimClock
    region: str
    account: str
    tick_seconds: float
    rules: dict[str, RuleState]
    firings: list[Firing]
    problems: list[str]
    functions: dict[str, LambdaFunction]
    _lock: threading.Lock
    _stop: threading.Event

    def client(self, service: str) -> Any:
        """A client talking to moto directly (EventBridge implements it)."""
        raise NotImplementedError

    def _notify(self, kind: str, item: Any) -> None:
        raise NotImplementedError

    def _schedule_loop(self) -> None:
        events = self.client("events")
        lambda_client = self.client("lambda")
        while not self._stop.wait(self.tick_seconds):
            try:
                self._tick(events, lambda_client)
            except Exception as exc:  # noqa: BLE001 - keep scheduling; report what broke
                if not self._stop.is_set():
                    self.problems.append(f"scheduler: {exc!r}")

    def _tick(self, events: Any, lambda_client: Any) -> None:
        with self._lock:
            tracked = [rule for rule in self.rules.values() if rule.removed is None]
        if not tracked:
            return
        listed = {rule["Name"]: rule for rule in all_rules(events)}
        now = self.clock.now()
        for rule in tracked:
            current = listed.get(rule.name)
            if current is None:
                rule.removed = now
                self._notify("rule-gone", rule)
                continue
            if current.get("State") != "ENABLED" or now < rule.next_fire:
                continue
            rule.next_fire = max(rule.next_fire + rule.period, now)
            rule.fired += 1
            self._fire(rule, events, lambda_client)

    def _fire(self, rule: RuleState, events: Any, lambda_client: Any) -> None:
        try:
            targets = events.list_targets_by_rule(Rule=rule.name)["Targets"]
        except events.exceptions.ResourceNotFoundException:
            rule.removed = self.clock.now()  # deleted since ListRules: a firing that never happens
            self._notify("rule-gone", rule)
            return
        if not targets:
            # A target-less rule fires into nothing, as in EventBridge (e.g. between a hand-off's RemoveTargets
            # and its DeleteRule): not a problem in itself; one that stays is reported as left behind.
            firing = Firing(rule.name, self.clock.now(), time.monotonic(), None, "rule has no targets")
            self._record_firing(firing, problem=False)
        for target in targets:
            arn = str(target["Arn"])
            function = self.functions.get(arn.split(":$", maxsplit=1)[0]) or next(
                (f for a, f in self.functions.items() if arn.startswith(a + ":")), None
            )
            if function is None:
                problem = f"target {arn} is not a provider function ({', '.join(self.functions)})"
                self._record_firing(Firing(rule.name, self.clock.now(), time.monotonic(), None, problem))
                continue
            if not self._permitted(rule.arn, function, lambda_client):
                problem = (
                    "EventBridge may not invoke the function: its resource policy has no lambda:InvokeFunction "
                    f"statement for events.amazonaws.com matching {rule.arn}"
                )
                self._record_firing(Firing(rule.name, self.clock.now(), time.monotonic(), None, problem))
                continue
            event = json.loads(target["Input"]) if "Input" in target else self._scheduled_event(rule)
            invocation = function.invoke_async(event, source=f"eventbridge:{rule.name}")
            self._record_firing(Firing(rule.name, self.clock.now(), time.monotonic(), invocation))

    def _record_firing(self, firing: Firing, problem: bool = True) -> None:
        with self._lock:
            self.firings.append(firing)
            if firing.problem and problem:
                self.problems.append(f"{firing.rule}: {firing.problem}")
        self._notify("fire", firing)

    def _permitted(self, rule_arn: str, function: LambdaFunction, lambda_client: Any) -> bool:
        try:
            policy = json.loads(lambda_client.get_policy(FunctionName=function.function_name)["Policy"])
        except Exception:  # noqa: BLE001 - no policy at all
            return False
        for statement in policy.get("Statement", []):
            principal = statement.get("Principal", {})
            service = principal.get("Service") if isinstance(principal, dict) else principal
            action = statement.get("Action")
            actions = action if isinstance(action, list) else [action]
            if statement.get("Effect", "Allow") != "Allow" or service != "events.amazonaws.com":
                continue
            if not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in actions):
                continue
            source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
            if source is None or fnmatch.fnmatchcase(rule_arn, source):
                return True
        return False

    def _scheduled_event(self, rule: RuleState) -> dict[str, Any]:
        """The event EventBridge sends for a scheduled rule whose target has no Input."""
        return {
            "version": "0",
            "id": "offline-scheduled-event",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock.now())),
            "region": self.region,
            "resources": [rule.arn],
            "detail": {},
        }


def all_rules(events: Any) -> list[dict[str, Any]]:
    """Every rule: ListRules pages its answer (moto too), so a single call misses rules past the first page."""
    rules: list[dict[str, Any]] = []
    for page in events.get_paginator("list_rules").paginate():
        rules.extend(page["Rules"])
    return rules
