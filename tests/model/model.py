"""The model: CloudFormation and EventBridge driving the real handler, and the invariants checked on what happened.

``Model`` is plain Python; ``machine.ModelMachine`` lets hypothesis choose its steps and the defect tests
call the same steps by hand. After every step ``check()`` raises ``InvariantViolation`` naming each broken
rule (I1-I4 of issue 15, W7 for defect 7).

Invariants as checked (CloudHSM calls count when the emulator applied them: outcome ``ok``):
- I1 DeleteBackup(B) is applied only (a) by a Delete of a resource that owns B, whose properties name B with
  OnDelete Delete, or (b) by the delivery of a Create/Update whose own RestoreBackup(B) succeeded, while
  CloudFormation still listens to that request and holds no SUCCESS for it (the undo of its own failed
  operation). Owner: the resource whose request's RestoreBackup(B) last succeeded; when an owner's Delete is
  answered, the live resources of the same stack naming B inherit it (a rename); across stacks, never.
- I2 While CloudFormation holds SUCCESS for a resource's Create/Update and has sent it no Delete, the backup
  that SUCCESS named is READY, unless since then it was deleted from outside: by the model's "someone
  else" steps, or by a resource of another stack allowed by I1.
- I3 After a resource's Delete is answered SUCCESS, no invocation for that resource applies RestoreBackup,
  TagResource, UntagResource, ModifyBackupAttributes or DeleteBackup, and no EventBridge rule target and
  no SSM parameter of its requests remains (found by the RequestId in a target's Input, by the ResponseURL in
  a parameter's value).
- I4 Every response is at most 4096 bytes, names a non-empty PhysicalResourceId, SUCCESS or FAILED, and copies
  the request's ids; an invocation sends at most one response per request; every request CloudFormation
  listens to is answered by its ServiceTimeout (not checked when the model itself starved the request's
  poll rule of firings for the last POLL_STARVED seconds before that deadline).
- W7 A wait whose backup was deleted from outside (DELETED, or PENDING_DELETION this resource did not
  restore) ends at its next poll with an answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cloudhsm_backup_restore_pipeline.contract import EVENT_INVOKE_MAX_EVENT_AGE_SECONDS

from tests.model.cloudformation import (
    BACKUP_IDS,
    STACKS,
    Request,
    Slot,
    arn_of,
    backup_of,
    build_event,
    deletes,
    invented_physical_id,
    region_of,
)
from tests.model.world import FUNCTION_ARN, Arrival, Invocation, World

MAX_RESPONSE_BYTES = 4096
DUPLICATE_WINDOW = float(os.environ.get("MODEL_DUPLICATE_WINDOW", EVENT_INVOKE_MAX_EVENT_AGE_SECONDS))
"""How long after CloudFormation sent a request the model may deliver it again (C8). Lambda keeps an event up
to MaximumEventAgeInSeconds (the contract's 3600 s), so that is the default; MODEL_DUPLICATE_WINDOW narrows
it (e.g. 60) to ask only for duplicates close to the first delivery."""
POLL_PERIOD = 60.0
"""rate(1 minute): the fair scheduler fires every rule once per modelled minute."""
POLL_STARVED = POLL_PERIOD
"""A rule that did not fire in this long before its request's deadline was starved by the model (its other,
sequential invocations took the time EventBridge would have used to fire it): no I4 for that request."""
FAIR_FIRINGS_CAP = 80
"""Firings per rule in one ``wait`` before the scheduler stops firing it (a wait ends by its ServiceTimeout)."""
ACTING = ("RestoreBackup", "TagResource", "UntagResource", "ModifyBackupAttributes", "DeleteBackup")


def target_request_ids(rule: dict[str, Any]) -> set[str]:
    """The RequestIds of the poll events a rule's targets carry (what the handler wrote as their Input)."""
    found: set[str] = set()
    for target in rule.get("Targets", []):
        try:
            event = json.loads(target.get("Input") or "{}")
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("RequestId"):
            found.add(str(event["RequestId"]))
    return found


class InvariantViolation(AssertionError):  # noqa: N818 - what the test reports: an invariant broke
    """One or more invariants broke; the message lists each with the step that broke it."""


@dataclass
class Delivery:
    """One delivery of a request (C8) and the polls its hand-off started: the unit that may undo its own restore."""

    number: int
    request: Request
    restored: set[str] = field(default_factory=set)


@dataclass
class OutsideEvent:
    backup_id: str
    at: float
    kind: str
    stack: str | None = None


class Model:
    """CloudFormation + EventBridge + the invariants, on one World."""

    def __init__(self, world: World) -> None:
        self.world = world
        world.reset()
        self.clock = world.clock
        self.slots: list[Slot] = []
        self.requests: list[Request] = []
        self.by_path: dict[str, Request] = {}
        self.by_request_id: dict[str, Request] = {}
        self.deliveries: list[Delivery] = []
        self.rule_delivery: dict[str, Delivery] = {}
        self.rule_order: list[str] = []
        self.rule_last_fired: dict[str, float] = {}
        self.owners: dict[str, set[Slot]] = {}
        self.outside: list[OutsideEvent] = []
        self.violations: list[str] = []
        self.steps: list[str] = []
        self.answers_seen: dict[int, dict[str, int]] = {}
        self.survey: list[str] | None = None
        """Survey mode (tests/model/survey.py): violations are collected here instead of raised."""
        self.sabotage: str | None = None
        """Meta-tests only: break the world on purpose (``extra_delete``, ``lose_answers``, ``leave_rule``)."""

    # -- setup -----------------------------------------------------------------------------------------

    def add_backups(self, restore_seconds: dict[str, float]) -> None:
        """B1, B2 (the function's region) and B3 (another region) in PENDING_DELETION, restorable."""
        for key, backup_id in BACKUP_IDS.items():
            region = region_of(backup_id)
            self.world.emulator.account.add_backup(
                backup_id,
                restore_seconds=restore_seconds.get(key, 0.0),
                region=None if region == self.world.emulator.account.region else region,
            )

    # -- what CloudFormation sees ---------------------------------------------------------------------

    def current(self, stack: str, logical: str) -> Slot | None:
        for slot in self.slots:
            if slot.stack == stack and slot.logical == logical and not slot.gone and slot.needs != "cleanup_delete":
                return slot
        return None

    def live(self) -> list[Slot]:
        return [s for s in self.slots if not s.gone]

    def finishing(self, stack: str) -> bool:
        """The stack's operation still owes a rollback or cleanup request: no new operation starts there (C10)."""
        return any(s.stack == stack and s.needs is not None for s in self.live())

    def idle_held(self) -> list[Slot]:
        """Resources CloudFormation may update or rename now."""
        return [
            s
            for s in self.live()
            if s.held is not None
            and s.inflight is None
            and s.needs is None
            and not s.delete_sent
            and not self.finishing(s.stack)
        ]

    def deletable(self) -> list[Slot]:
        """Resources CloudFormation may send a Delete now (C3-C5): answered or given up, not deleted yet."""
        return [
            s
            for s in self.live()
            if s.inflight is None and s.needs != "rollback_update" and (s.held is not None or s.needs is not None)
        ]

    # -- sending ---------------------------------------------------------------------------------------

    def create_slot(self, stack: str, logical: str, props: dict[str, str]) -> Slot:
        slot = Slot(number=len(self.slots), stack=stack, logical=logical, props=dict(props))
        self.slots.append(slot)
        return slot

    def send(
        self,
        kind: str,
        slot: Slot,
        props: dict[str, str],
        faults: list[dict[str, Any]] | None = None,
        old: dict[str, str] | None = None,
        overlap: tuple[int, list[dict[str, Any]]] | None = None,
    ) -> Request:
        """CloudFormation sends a request and Lambda delivers it once (C1, C8), or twice overlapping."""
        url, path = self.world.response_url()
        number = len(self.requests)
        event = build_event(kind, number, slot, props, url, old=old, physical=slot.physical)
        timeout = float(props.get("ServiceTimeout", 3600))
        request = Request(number, kind, slot, event, path, self.clock.now(), self.clock.now() + timeout)
        self.requests.append(request)
        self.by_path[path] = request
        self.by_request_id[request.request_id] = request
        slot.requests.append(request)
        slot.inflight = request
        if kind == "Delete":
            slot.delete_sent = slot.delete_came = True
        self.steps.append(f"send {request.label()} {json.dumps(props, sort_keys=True)} faults={faults or []}")
        if overlap is None:
            self.deliver(request, faults)
        else:
            self.overlap(request, overlap[0], faults, overlap[1])
        return request

    def deliver(self, request: Request, faults: list[dict[str, Any]] | None = None) -> Invocation:
        """One delivery of ``request`` (the first, a duplicate or a retry)."""
        delivery = Delivery(len(self.deliveries), request)
        self.deliveries.append(delivery)
        return self.run(request.event, delivery, faults)

    def redeliver(self, request: Request, faults: list[dict[str, Any]] | None = None) -> None:
        """C8: the same event again (at-least-once delivery, or Lambda's retry after a failed invocation)."""
        if self.clock.now() - request.sent_at > DUPLICATE_WINDOW:
            return
        self.steps.append(f"redeliver {request.label()} faults={faults or []}")
        self.deliver(request, faults)

    # -- EventBridge -----------------------------------------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        """The account's rules in the order the model first saw them (deterministic firing order)."""
        found = {rule["Name"]: rule for rule in self.world.rules()}
        for name in found:
            if name not in self.rule_order:
                self.rule_order.append(name)
        return [found[name] for name in self.rule_order if name in found]

    def fire(self, rule: dict[str, Any], faults: list[dict[str, Any]] | None = None) -> None:
        """EventBridge invokes the function with each target's Input (the poll event the handler wrote)."""
        for target in rule["Targets"]:
            if target.get("Arn") != FUNCTION_ARN or "Input" not in target:
                continue
            event = json.loads(target["Input"])
            request = self.by_request_id.get(str(event.get("RequestId")))
            if request is None:
                self.violate("I3", f"rule {rule['Name']} targets a request CloudFormation never sent: {event}")
                continue
            delivery = self.rule_delivery.get(rule["Name"]) or Delivery(len(self.deliveries), request)
            self.expire_due()  # deadlines passed before this firing are judged on the firings before it
            cannot_end = self._cannot_end_well(request, rule["Name"])
            self.rule_last_fired[rule["Name"]] = self.clock.now()
            self.steps.append(f"fire {rule['Name']} for {request.label()} faults={faults or []}")
            self.run(event, delivery, faults)
            if cannot_end and request.listening:
                self.violate(
                    "W7",
                    f"{request.label()} waits on {backup_of(request.props)}, deleted from outside, and its poll "
                    "did not end the wait",
                )

    def _cannot_end_well(self, request: Request, rule: str) -> bool:
        """W7: the backup this wait is for was deleted from outside since the rule last fired."""
        backup = backup_of(request.props)
        since = self.rule_last_fired.get(rule, request.sent_at)
        return (
            request.listening
            and any(e.backup_id == backup and e.stack is None and e.at >= since for e in self.outside)
            and self.world.backup_state(backup, region_of(backup)) != "READY"
        )

    def fire_one(self, index: int, faults: list[dict[str, Any]] | None = None) -> None:
        rules = self.rules()
        if rules:
            self.fire(rules[index % len(rules)], faults)

    def wait(self, seconds: float) -> None:
        """Let time pass; EventBridge fires every rule once per minute meanwhile (fair, in the model's order)."""
        self.steps.append(f"wait {seconds:.0f} s")
        end = self.clock.now() + seconds
        firings: dict[str, int] = {}
        while self.clock.now() < end:
            rules = [r for r in self.rules() if firings.get(r["Name"], 0) < FAIR_FIRINGS_CAP]
            if not rules:
                self.pass_time(end - self.clock.now())
                break
            self.pass_time(min(POLL_PERIOD, end - self.clock.now()))
            for number, rule in enumerate(rules):
                if number and rule["Name"] not in {r["Name"] for r in self.world.rules()}:
                    continue  # an earlier firing this minute removed it
                firings[rule["Name"]] = firings.get(rule["Name"], 0) + 1
                self.fire(rule)

    def pass_time(self, seconds: float) -> None:
        """Move the clock, ending each wait whose ServiceTimeout passes on the way (C2)."""
        end = self.clock.now() + max(0.0, seconds)
        for request in sorted(self.requests, key=lambda r: r.deadline):
            if request.listening and request.deadline <= end:
                self.clock.advance(max(0.0, request.deadline - self.clock.now()))
                self.expire(request)
        self.clock.advance(max(0.0, end - self.clock.now()))

    def expire_due(self) -> None:
        for request in self.requests:
            if request.listening and request.deadline <= self.clock.now():
                self.expire(request)

    def expire(self, request: Request) -> None:
        """CloudFormation stops waiting: no answer by ServiceTimeout (C2)."""
        request.listening = False
        request.ended_by = "deadline"
        rules = [r for r in self.world.rules() if request.request_id in target_request_ids(r)]
        starved = any(
            request.deadline - self.rule_last_fired.get(r["Name"], request.sent_at) > POLL_STARVED for r in rules
        )
        if not starved:
            self.violate("I4", f"{request.label()} got no answer within its ServiceTimeout")
        self.settle(request, None)

    def cancel(self, slot: Slot) -> None:
        """C7: another resource failed; CloudFormation stops waiting for this one and rolls it back."""
        request = slot.inflight
        if request is None or not request.listening:
            return
        self.steps.append(f"cancel {request.label()}")
        request.listening = False
        request.ended_by = "cancelled"
        self.settle(request, None)

    # -- outside the stack -----------------------------------------------------------------------------

    def delete_from_outside(self, key: str) -> None:
        """Someone else calls DeleteBackup (not through the handler)."""
        backup_id = BACKUP_IDS[key]
        region = region_of(backup_id)
        store = self.world.emulator.account.store_of(None if region == self.world.emulator.account.region else region)
        if self.world.backup_state(backup_id, region) != "READY":
            return
        store.delete(backup_id)
        self.outside.append(OutsideEvent(backup_id, self.clock.now(), "deleted from outside"))
        self.steps.append(f"outside DeleteBackup {backup_id}")

    def creation_in_progress(self, key: str) -> None:
        """The backup is still being made (CREATE_IN_PROGRESS): a Create must wait for it."""
        self._replace(key, "CREATE_IN_PROGRESS")
        self.steps.append(f"{BACKUP_IDS[key]} is CREATE_IN_PROGRESS")

    def creation_completes(self, key: str) -> None:
        """CloudHSM finishes making the backup: READY."""
        backup_id = BACKUP_IDS[key]
        if self.world.backup_state(backup_id, region_of(backup_id)) == "CREATE_IN_PROGRESS":
            self._replace(key, "READY")
            self.steps.append(f"{backup_id} turns READY (created)")

    def _replace(self, key: str, state: str) -> None:
        backup_id = BACKUP_IDS[key]
        region = region_of(backup_id)
        self.world.emulator.account.add_backup(
            backup_id, state=state, region=None if region == self.world.emulator.account.region else region
        )

    def backup_vanishes(self, key: str) -> None:
        """The backup turns DELETED (its window ended, or the account removed it)."""
        backup_id = BACKUP_IDS[key]
        self._replace(key, "DELETED")
        self.outside.append(OutsideEvent(backup_id, self.clock.now(), "DELETED"))
        self.steps.append(f"{backup_id} turns DELETED")

    # -- one invocation --------------------------------------------------------------------------------

    def run(
        self,
        event: dict[str, Any],
        delivery: Delivery,
        faults: list[dict[str, Any]] | None,
        environment: int = 0,
        during: Callable[[Invocation], None] | None = None,
    ) -> Invocation:
        self.expire_due()
        invocation = self.world.invoke(event, faults, environment=environment, on_pause=during)
        if self.sabotage == "extra_delete":
            self._sabotage_delete(invocation, delivery.request)
        if self.sabotage == "lose_answers":
            invocation.arrivals = []
        self.account(invocation, delivery)
        for rule in self.rules():
            if rule["Name"] not in self.rule_delivery:
                self.rule_delivery[rule["Name"]] = delivery
                self.rule_last_fired.setdefault(rule["Name"], self.clock.now())
        if self.sabotage == "leave_rule" and delivery.request.kind == "Delete":
            self._sabotage_rule(delivery.request)
        return invocation

    def overlap(
        self,
        request: Request,
        at: int,
        faults: list[dict[str, Any]] | None = None,
        duplicate_faults: list[dict[str, Any]] | None = None,
    ) -> None:
        """Two deliveries of one event overlap (C8): the first stops before its ``at``-th AWS call while the
        duplicate runs whole in a second execution environment, then the first goes on."""
        if self.clock.now() - request.sent_at > DUPLICATE_WINDOW:
            return
        first = Delivery(len(self.deliveries), request)
        self.deliveries.append(first)
        overlapped: list[bool] = []

        def duplicate(paused: Invocation) -> None:
            self.account(paused, first)
            overlapped.append(True)
            self.steps.append(
                f"  (delivery {first.number} paused) duplicate of {request.label()} faults={duplicate_faults or []}"
            )
            second = Delivery(len(self.deliveries), request)
            self.deliveries.append(second)
            self.run(request.event, second, duplicate_faults, environment=1)

        self.steps.append(f"overlap {request.label()}: pause before call {at}, faults={faults or []}")
        self.run(request.event, first, [*(faults or []), {"kind": "pause", "at": at}], during=duplicate)
        if not overlapped:
            self.redeliver(request, duplicate_faults)

    def _sabotage_delete(self, invocation: Invocation, request: Request) -> None:
        backup_id = backup_of(request.props)
        region = region_of(backup_id)
        store = self.world.emulator.account.store_of(None if region == self.world.emulator.account.region else region)
        if self.world.backup_state(backup_id, region) == "READY":
            store.delete(backup_id)
            from cloudhsm_offline.emulator.calls import Call

            index = len(self.world.emulator.calls)
            invocation.calls.append(
                (index, Call("DeleteBackup", {"BackupId": backup_id}, "ok", self.clock.now(), "json"))
            )

    def _sabotage_rule(self, request: Request) -> None:
        name = "cloudhsm-poll-model1-sabotage"
        self.world.events.put_rule(Name=name, ScheduleExpression="rate(1 minute)")
        target = {
            "Id": "1",
            "Arn": FUNCTION_ARN + "-nothing",
            "Input": json.dumps({"RequestId": request.slot.requests[0].request_id}),
        }
        self.world.events.put_targets(Rule=name, Targets=[target])
        self.world.changed()

    def account(self, invocation: Invocation, delivery: Delivery) -> None:
        """Attribute the invocation's calls and answers not yet attributed, in the order they happened."""
        seen = self.answers_seen.setdefault(invocation.number, {})
        calls = invocation.calls[invocation.accounted :]
        arrivals = sorted(invocation.arrivals[invocation.accounted_arrivals :], key=lambda a: a.call_index)
        invocation.accounted = len(invocation.calls)
        invocation.accounted_arrivals = len(invocation.arrivals)
        for index, call in calls:
            while arrivals and arrivals[0].call_index <= index:
                self.answer(arrivals.pop(0), seen)
            self.call(call.operation, call.params, call.outcome, delivery)
        for arrival in arrivals:
            self.answer(arrival, seen)
        if invocation.outcome == "error":
            self.steps.append(f"  invocation {invocation.number} raised: {invocation.detail[-300:]}")
        elif invocation.outcome == "timeout":
            self.steps.append(f"  invocation {invocation.number} timed out")

    def call(self, operation: str, params: dict[str, Any], outcome: str, delivery: Delivery) -> None:
        if outcome != "ok" or operation not in ACTING:
            return
        request = delivery.request
        slot = request.slot
        backup = str(params.get("BackupId") or params.get("ResourceId") or "")
        if slot.gone:
            self.violate("I3", f"{operation}({backup}) for {slot.label()} after its Delete was answered")
        if operation == "RestoreBackup":
            delivery.restored.add(backup)
            self.owners[backup] = {slot}
        elif operation == "DeleteBackup":
            self.delete_backup(backup, delivery)

    def delete_backup(self, backup: str, delivery: Delivery) -> None:
        request = delivery.request
        slot = request.slot
        owner = slot in self.owners.get(backup, set())
        on_delete = request.kind == "Delete" and owner and deletes(request.props) and backup_of(request.props) == backup
        undo = (
            request.kind in ("Create", "Update")
            and backup in delivery.restored
            and request.listening
            and request.answer is None
        )
        if not (on_delete or undo):
            why = "does not own it" if not owner else "is not its Delete with OnDelete Delete"
            if request.kind != "Delete":
                why = (
                    "did not restore it in this delivery"
                    if backup not in delivery.restored
                    else "CloudFormation no longer listens to it or was already answered"
                )
            self.violate("I1", f"DeleteBackup({backup}) by {request.label()}: {why}")
        self.outside.append(OutsideEvent(backup, self.clock.now(), f"DeleteBackup by {slot.label()}", slot.stack))

    def answer(self, arrival: Arrival, seen: dict[str, int]) -> None:
        body = arrival.body
        request = self.by_path.get(arrival.path)
        if request is None:
            self.violate("I4", f"a response to a URL no request had: {arrival.path}")
            return
        seen[arrival.path] = seen.get(arrival.path, 0) + 1
        if seen[arrival.path] > 1:
            self.violate("I4", f"{request.label()} answered twice by one invocation")
        if arrival.size > MAX_RESPONSE_BYTES:
            self.violate("I4", f"{request.label()} answered with {arrival.size} bytes (> {MAX_RESPONSE_BYTES})")
        if not isinstance(body.get("PhysicalResourceId"), str) or not body.get("PhysicalResourceId"):
            self.violate("I4", f"{request.label()} answered without a PhysicalResourceId: {body}")
        if body.get("Status") not in ("SUCCESS", "FAILED"):
            self.violate("I4", f"{request.label()} answered Status {body.get('Status')!r}")
        for key in ("RequestId", "StackId", "LogicalResourceId"):
            if body.get(key) != request.event[key]:
                self.violate("I4", f"{request.label()} answer has {key} {body.get(key)!r}")
        self.steps.append(
            f"  answer {request.label()}: {body.get('Status')} {body.get('PhysicalResourceId')} "
            f"{str(body.get('Reason', ''))[:160]}"
            + ("" if request.listening else " (CloudFormation no longer listens)")
        )
        if request.listening and arrival.at <= request.deadline:
            request.listening = False
            request.answer = arrival
            request.ended_by = "answer"
            self.settle(request, arrival)

    # -- CloudFormation's reaction to an answer, a timeout or a cancellation ----------------------------

    def settle(self, request: Request, arrival: Arrival | None) -> None:
        slot = request.slot
        body = arrival.body if arrival is not None else {}
        success = body.get("Status") == "SUCCESS"
        physical = str(body.get("PhysicalResourceId") or "") or None
        if slot.inflight is request:
            slot.inflight = None
        if request.kind == "Create":
            if success:
                slot.physical, slot.held, slot.held_at, slot.props = (
                    physical,
                    request.props,
                    self.clock.now(),
                    request.props,
                )
                if slot.renames is not None and not slot.renames.gone:
                    slot.renames.needs = "cleanup_delete"  # C5: the old logical id goes in cleanup
            else:
                slot.physical = physical or invented_physical_id(slot)  # C4
                slot.needs = "rollback_delete"
        elif request.kind == "Update":
            rollback = slot.needs == "rolling_back"
            slot.needs = None
            if success and physical != slot.physical:
                self.replace(slot, request, physical)
            elif success:
                slot.held, slot.held_at, slot.props = request.props, self.clock.now(), request.props
            elif not rollback:
                slot.needs = "rollback_update"  # C6
                slot.rollback_to = dict(request.event["OldResourceProperties"])
        elif request.kind == "Delete":
            if success:
                self.forget(slot, arrival)
            else:
                slot.delete_sent = False  # DELETE_FAILED: CloudFormation (or the user) may try again

    def replace(self, slot: Slot, request: Request, physical: str | None) -> None:
        """C5: the old physical resource becomes its own resource, deleted in cleanup."""
        old = Slot(
            number=len(self.slots),
            stack=slot.stack,
            logical=slot.logical,
            props=dict(slot.held or slot.props),
            physical=slot.physical,
            held=slot.held,
            held_at=slot.held_at,
            needs="cleanup_delete",
            requests=[r for r in slot.requests if r is not request],
        )
        self.slots.append(old)
        for r in old.requests:
            r.slot = old
        slot.requests = [request]
        for backup, owners in self.owners.items():
            if slot in owners:
                owners.add(old)
                if backup != backup_of(request.props):
                    owners.discard(slot)
        slot.physical, slot.held, slot.held_at, slot.props = physical, request.props, self.clock.now(), request.props

    def forget(self, slot: Slot, arrival: Arrival | None) -> None:
        """A Delete answered SUCCESS: the resource is gone; same-stack resources naming its backups inherit."""
        slot.gone = True
        slot.gone_at_call = arrival.call_index if arrival is not None else len(self.world.emulator.calls)
        for backup, owners in self.owners.items():
            if slot in owners:
                owners.discard(slot)
                heirs = {
                    s
                    for s in self.live()
                    if s.stack == slot.stack
                    and not s.delete_sent
                    and s.held is not None
                    and backup_of(s.held) == backup
                }
                owners.update(heirs)

    # -- invariants over the state -----------------------------------------------------------------------

    def violate(self, rule: str, text: str) -> None:
        self.violations.append(f"{rule}: {text}")

    def check(self) -> None:
        """I2, I3's leftovers, then raise if anything broke since the start."""
        for slot in self.live():
            if slot.held is None or slot.delete_came:
                continue
            backup = backup_of(slot.held)
            state = self.world.backup_state(backup, region_of(backup))
            excused = any(
                e.backup_id == backup and e.at >= slot.held_at and (e.stack is None or e.stack != slot.stack)
                for e in self.outside
            )
            if state != "READY" and not excused:
                self.violate("I2", f"{slot.label()} holds SUCCESS for {arn_of(slot.held)} but the backup is {state}")
        gone = [s for s in self.slots if s.gone]
        if gone:
            rules = self.world.rules()
            parameters = self.world.parameters()
            for slot in gone:
                ids = {r.request_id for r in slot.requests}
                paths = {r.path for r in slot.requests}
                for rule in rules:
                    if ids & target_request_ids(rule):
                        self.violate("I3", f"rule {rule['Name']} of {slot.label()} remains after its Delete")
                for parameter in parameters:
                    if any(p in str(parameter.get("Value")) for p in paths):
                        self.violate("I3", f"parameter {parameter['Name']} of {slot.label()} remains after its Delete")
        if self.violations and self.survey is not None:
            steps = "\n".join(self.steps[-40:])
            self.survey.extend(f"{v}\n--- steps ---\n{steps}" for v in self.violations)  # survey mode: go on
            self.violations = []
        if self.violations:
            unique = list(dict.fromkeys(self.violations))
            raise InvariantViolation(
                "\n".join(unique) + "\n--- steps (and answers) ---\n" + "\n".join(self.steps[-60:])
            )

    # -- convenience for the steps ---------------------------------------------------------------------

    def stacks(self) -> tuple[str, ...]:
        return STACKS
