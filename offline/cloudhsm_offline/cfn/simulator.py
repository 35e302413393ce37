"""CloudFormation's side of the custom-resource protocol: events out, responses in, lifecycle rules applied.

Events are built as CloudFormation builds them (every scalar property becomes a string, ServiceToken
and ServiceTimeout inside ResourceProperties, a presigned-looking HTTPS ResponseURL) and sent with
the Event invocation type. The first response (or ServiceTimeout) decides the operation; it is
validated as CloudFormation would. Replacement (an Update returning a new PhysicalResourceId) is
followed by a cleanup Delete of the old id with the old properties; a failed Create by a rollback
Delete carrying the FAILED response's PhysicalResourceId; a failed Update by a rollback Update.
"""

from __future__ import annotations

import copy
import secrets
import string
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from cloudhsm_offline.cfn import checks
from cloudhsm_offline.cfn.checks import Violation
from cloudhsm_offline.cfn.outcome import (
    DEFAULT_RESOURCE_TYPE,
    DEFAULT_SERVICE_TIMEOUT,
    Outcome,
    ResourceState,
    cfn_string,
)
from cloudhsm_offline.cfn.response_server import ReceivedResponse, ResponseServer
from cloudhsm_offline.clock import VirtualClock
from cloudhsm_offline.eventbridge.bridge import EventBridge
from cloudhsm_offline.lambda_runtime.function import LambdaFunction
from cloudhsm_offline.lambda_runtime.worker import Invocation
from cloudhsm_offline.observers import Listeners


class CloudFormationSimulator:
    """Sends custom-resource events to a LambdaFunction and judges the responses as CloudFormation does."""

    def __init__(
        self,
        function: LambdaFunction,
        responses: ResponseServer,
        clock: VirtualClock | None = None,
        *,
        eventbridge: EventBridge | None = None,
        stack_name: str = "offline-stack",
        region: str = "us-east-1",
        account: str = "123456789012",
        duplicate_delivery: bool = False,
    ) -> None:
        self.function = function
        self.responses = responses
        self.clock = clock or function.clock
        self.eventbridge = eventbridge
        self.stack_name = stack_name
        self.region = region
        self.account = account
        self.stack_id = f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/{uuid.uuid4()}"
        self.service_token = function.arn
        self.duplicate_delivery = duplicate_delivery
        self.settle = True
        """Wait, after the first response, for this request's invocations to finish (to notice a second one)."""
        self.resources: dict[str, ResourceState] = {}
        self.outcomes: list[Outcome] = []
        self.events: list[dict[str, Any]] = []
        self._deliveries: dict[str, list[Invocation]] = {}
        self.listeners: Listeners[[str, Any]] = Listeners()
        """Called with ``(kind, item)``: ``event`` (dict, when sent) and ``outcome`` (Outcome, when decided)."""
        self._lock = threading.Lock()

    # -- events ------------------------------------------------------------------------------------

    def build_event(
        self,
        request_type: str,
        logical_id: str,
        properties: Mapping[str, Any],
        resource_type: str = DEFAULT_RESOURCE_TYPE,
        *,
        physical_id: str | None = None,
        old_properties: Mapping[str, Any] | None = None,
        service_timeout: int | None = None,
    ) -> dict[str, Any]:
        """An event exactly as CloudFormation sends it (with a fresh RequestId and ResponseURL)."""
        request_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": self.service_token,
            "ResponseURL": self.responses.mint(self.stack_id, request_id),
            "StackId": self.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        event["ResourceProperties"] = self.resource_properties(properties, service_timeout)
        if old_properties is not None:
            event["OldResourceProperties"] = self.resource_properties(old_properties, None)
        return event

    def resource_properties(self, properties: Mapping[str, Any], service_timeout: int | None) -> dict[str, Any]:
        """ServiceToken first, then the template's properties converted to strings."""
        props = {"ServiceToken": self.service_token, **properties}  # the template's ServiceToken wins, kept first
        if service_timeout is not None:
            if not 1 <= int(service_timeout) <= 3600:
                raise ValueError("ServiceTimeout must be between 1 and 3600 seconds")
            props["ServiceTimeout"] = service_timeout
        converted = cfn_string(props)
        assert isinstance(converted, dict)
        return converted

    @staticmethod
    def service_timeout_of(event: Mapping[str, Any]) -> float:
        """The ServiceTimeout CloudFormation applies to this event (default 3600 s)."""
        value = event.get("ResourceProperties", {}).get("ServiceTimeout")
        return float(value) if value is not None else float(DEFAULT_SERVICE_TIMEOUT)

    # -- operations --------------------------------------------------------------------------------

    def create(
        self,
        logical_id: str,
        properties: Mapping[str, Any],
        resource_type: str = DEFAULT_RESOURCE_TYPE,
        service_timeout: int | None = None,
        rollback: bool = True,
    ) -> Outcome:
        """Create a resource; a FAILED Create is followed by a rollback Delete."""
        event = self.build_event("Create", logical_id, properties, resource_type, service_timeout=service_timeout)
        outcome = self.send(event, role="request")
        if outcome.status == "SUCCESS" and outcome.physical_resource_id:
            self.resources[logical_id] = ResourceState(
                resource_type, outcome.physical_resource_id, dict(properties), outcome.data
            )
        elif rollback:
            physical_id = outcome.physical_resource_id
            if not physical_id or any(v.code.startswith("physical-id") for v in outcome.violations):
                physical_id = self._invented_physical_id(logical_id)
            delete = self.build_event(
                "Delete",
                logical_id,
                properties,
                resource_type,
                physical_id=physical_id,
                service_timeout=service_timeout,
            )
            outcome.followups.append(self.send(delete, role="rollback"))
        return outcome

    def update(
        self,
        logical_id: str,
        properties: Mapping[str, Any],
        *,
        service_timeout: int | None = None,
        old_properties: Mapping[str, Any] | None = None,
        physical_id: str | None = None,
        rollback: bool = True,
        cleanup: bool = True,
        role: str = "request",
    ) -> Outcome:
        """Update a resource; a new PhysicalResourceId means replacement (cleanup Delete of the old one).

        ``cleanup=False`` leaves the old resource to the caller: in a stack, replaced resources are deleted
        only after the whole update succeeded. ``rollback=False`` skips the rollback Update of a failure.
        """
        state = self.resources.get(logical_id)
        if state is None and (old_properties is None or physical_id is None):
            raise KeyError(f"{logical_id} was not created; pass old_properties and physical_id")
        resource_type = state.resource_type if state else DEFAULT_RESOURCE_TYPE
        old_props = dict(old_properties if old_properties is not None else state.properties)  # type: ignore[union-attr]
        old_id = physical_id or state.physical_id  # type: ignore[union-attr]
        event = self.build_event(
            "Update",
            logical_id,
            properties,
            resource_type,
            physical_id=old_id,
            old_properties=old_props,
            service_timeout=service_timeout,
        )
        outcome = self.send(event, role=role)
        if outcome.status == "SUCCESS" and outcome.physical_resource_id:
            self.resources[logical_id] = ResourceState(
                resource_type, outcome.physical_resource_id, dict(properties), outcome.data
            )
            if cleanup and outcome.physical_resource_id != old_id:
                delete = self.build_event("Delete", logical_id, old_props, resource_type, physical_id=old_id)
                outcome.followups.append(self.send(delete, role="cleanup"))
        elif rollback:
            back = self.build_event(
                "Update", logical_id, old_props, resource_type, physical_id=old_id, old_properties=properties
            )
            outcome.followups.append(self.send(back, role="update-rollback"))
        return outcome

    def delete(
        self,
        logical_id: str,
        properties: Mapping[str, Any] | None = None,
        physical_id: str | None = None,
        resource_type: str | None = None,
        role: str = "request",
    ) -> Outcome:
        """Delete a resource (by default the one this stack created); ``role`` names why (cleanup, rollback)."""
        state = self.resources.get(logical_id)
        if state is None and (properties is None or physical_id is None):
            raise KeyError(f"{logical_id} was not created; pass properties and physical_id")
        props = dict(properties if properties is not None else state.properties)  # type: ignore[union-attr]
        the_id = physical_id or state.physical_id  # type: ignore[union-attr]
        kind = resource_type or (state.resource_type if state else DEFAULT_RESOURCE_TYPE)
        event = self.build_event("Delete", logical_id, props, kind, physical_id=the_id)
        outcome = self.send(event, role=role)
        if outcome.status == "SUCCESS" and (state is None or state.physical_id == the_id):
            self.resources.pop(logical_id, None)
        return outcome

    def deliver_again(self, event: Mapping[str, Any], source: str = "cloudformation:redelivery") -> Invocation:
        """Invoke the function again with the very same event (same RequestId and ResponseURL)."""
        invocation = self.function.invoke_async(dict(event), source=source)
        self._deliveries.setdefault(str(event["RequestId"]), []).append(invocation)
        return invocation

    # -- the protocol ------------------------------------------------------------------------------

    def send(self, event: dict[str, Any], role: str = "request") -> Outcome:
        """Invoke the function asynchronously with ``event`` and decide the operation as CloudFormation does."""
        with self.clock.driving():  # one world call: time moves only while it waits
            start = self.clock.now()
            deadline = start + self.service_timeout_of(event)
            self.events.append(copy.deepcopy(event))
            self.listeners.notify("event", event)
            deliveries = self._deliveries.setdefault(str(event["RequestId"]), [])
            deliveries.append(self.function.invoke_async(event, source="cloudformation"))
            if self.duplicate_delivery:
                deliveries.append(self.function.invoke_async(event, source="cloudformation:duplicate"))
            # On the virtual clock: when nothing runs or is scheduled before the deadline, time jumps to it.
            first = self.responses.wait_for_response(str(event["ResponseURL"]), max(0.0, deadline - self.clock.now()))
            if first is not None and first.modelled <= deadline and self.settle:
                self._settle()
            outcome = self._judge(event, role, first, start)
            with self._lock:
                self.outcomes.append(outcome)
            self.listeners.notify("outcome", outcome)
            return outcome

    def _settle(self) -> None:
        """Let the invocations of this request finish so that a second response can be noticed."""
        self.function.wait_idle()
        if self.eventbridge is not None:
            self.eventbridge.wait_quiet(within=60.0)

    def _judge(self, event: dict[str, Any], role: str, first: ReceivedResponse | None, start: float) -> Outcome:
        """The operation's outcome, decided by the first response to an event sent at ``start``."""
        deadline = start + self.service_timeout_of(event)
        timed_out = first is None or first.modelled > deadline
        answered = None if first is None or timed_out else first.modelled
        request_id = str(event["RequestId"])
        responses = self.responses.responses_for_url(str(event["ResponseURL"]))
        deliveries = len(self._deliveries.get(request_id, [])) or 1
        violations: list[Violation] = []
        body: dict[str, Any] | None = None
        if first is not None:
            body, found = checks.check_body(event, first.raw)
            violations.extend(found)
        violations.extend(checks.check_responses(responses, deliveries, timed_out, deadline))
        status = "FAILED"
        if timed_out:
            reason = checks.timeout_message(request_id)
        elif body is None:
            reason = "Invalid response object: " + "; ".join(v.message for v in violations)
        elif violations:
            reason = "Invalid response: " + "; ".join(v.message for v in violations)
        else:
            status = str(body.get("Status"))
            reason = str(body.get("Reason") or "")
        physical = body.get("PhysicalResourceId") if body is not None and not timed_out else None
        data = body.get("Data") if body is not None and isinstance(body.get("Data"), dict) else {}
        invocations = sum(1 for r in list(self.function.records) if r.event.get("RequestId") == request_id)
        return Outcome(
            operation=str(event["RequestType"]),
            logical_id=str(event["LogicalResourceId"]),
            request_id=request_id,
            role=role,
            status=status,
            reason=reason,
            physical_resource_id=physical if isinstance(physical, str) else None,
            data=dict(data or {}),
            response_status=None if body is None else str(body.get("Status")),
            response_bytes=None if first is None else first.size,
            elapsed_modelled=(self.clock.now() if answered is None else answered) - start,
            invocations=invocations,
            violations=violations,
            event=event,
            responses=responses,
            timed_out=timed_out,
            deliveries=deliveries,
            event_sent=start,
        )

    def _invented_physical_id(self, logical_id: str) -> str:
        alphabet = string.ascii_uppercase + string.digits
        return f"{self.stack_name}-{logical_id}-{''.join(secrets.choice(alphabet) for _ in range(12))}"

    # -- after the fact ----------------------------------------------------------------------------

    def verify(self) -> list[Violation]:
        """Re-check every request now: responses that came late or more than once."""
        found: list[Violation] = []
        for outcome in list(self.outcomes):
            responses = self.responses.responses_for_url(str(outcome.event["ResponseURL"]))
            deliveries = len(self._deliveries.get(outcome.request_id, [])) or 1
            deadline = outcome.event_sent + self.service_timeout_of(outcome.event)
            for violation in checks.check_responses(responses, deliveries, outcome.timed_out, deadline):
                found.append(
                    Violation(violation.code, f"{outcome.operation} {outcome.logical_id}: {violation.message}")
                )
        return found
