"""The offline EventBridge's scheduler: it lists the rules and fires each scheduled target on the virtual clock.

A firing invokes the target function asynchronously with the target's ``Input`` as the event, provided the
function's resource policy lets ``events.amazonaws.com`` invoke it for that rule (an ArnLike SourceArn, which may
name a prefix with a wildcard). A rule without targets fires into nothing, as in EventBridge.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cloudhsm_offline.clock import VirtualClock
from cloudhsm_offline.eventbridge.gateway import rate_seconds
from cloudhsm_offline.lambda_runtime.function import LambdaFunction
from cloudhsm_offline.lambda_runtime.worker import Invocation


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
    """Fires the scheduled rules EventBridge created, on the virtual clock (an actor of the world).

    ``client(service)`` talks to moto; ``notify(kind, item)`` reports ``fire`` and ``rule-gone``. The
    scheduler sleeps on the clock until the next rule is due or the rules change (``rules_changed``).
    """

    def __init__(
        self,
        clock: VirtualClock,
        region: str,
        account: str,
        client: Callable[[str], Any],
        notify: Callable[[str, Any], None],
    ) -> None:
        self.clock = clock
        self.region = region
        self.account = account
        self.client = client
        self._notify = notify
        self.rules: dict[str, RuleState] = {}
        self.firings: list[Firing] = []
        self.problems: list[str] = []
        self.functions: dict[str, LambdaFunction] = {}
        """Every provider function in the account, by ARN (rules may target any of them)."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._changed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the scheduling actor."""
        self._thread = self.clock.spawn(self._schedule_loop, name="eventbridge scheduler")

    def stop(self) -> None:
        """Stop the scheduling actor."""
        self._stop.set()
        self.clock.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def track(self, params: dict[str, Any], created: float) -> None:
        """A PutRule passed the gateway: schedule its rule (a ``rate()`` rule; others never fire)."""
        name = str(params.get("Name"))
        period = rate_seconds(str(params.get("ScheduleExpression", "")))
        if period is None:
            return
        arn = f"arn:aws:events:{self.region}:{self.account}:rule/{name}"
        with self._lock:
            existing = self.rules.get(name)
            if existing is None or existing.removed is not None:
                self.rules[name] = RuleState(name, arn, period, created, created + period)
            else:
                existing.period = period

    def rules_changed(self) -> None:
        """An EventBridge call changed the rules: look again before the next firing."""
        self._changed = True
        self.clock.notify()

    @property
    def has_live_rules(self) -> bool:
        """True while a scheduled rule created through the gateway has not been seen removed."""
        with self._lock:
            return any(rule.removed is None for rule in self.rules.values())

    def _schedule_loop(self) -> None:
        events = self.client("events")
        lambda_client = self.client("lambda")
        while not self._stop.is_set():
            self._changed = False
            try:
                self._tick(events, lambda_client)
            except Exception as exc:  # noqa: BLE001 - keep scheduling; report what broke
                if not self._stop.is_set():
                    self.problems.append(f"scheduler: {exc!r}")
            with self._lock:
                due = [rule.next_fire for rule in self.rules.values() if rule.removed is None]
            # After a tick every live rule is due later; the floor keeps a failing tick from spinning.
            timeout = None if not due else max(1.0, min(due) - self.clock.now())
            self.clock.wait_for(lambda: self._stop.is_set() or self._changed, timeout)

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
            if now < rule.next_fire:
                continue
            rule.next_fire = max(rule.next_fire + rule.period, now)
            if current.get("State") != "ENABLED":
                continue  # a disabled rule lets its schedule pass without firing
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
