"""Response validation as CloudFormation performs it on a custom resource's reply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cloudhsm_offline.cfn.response_server import ReceivedResponse

MAX_BODY_BYTES = 4096
MAX_PHYSICAL_ID_BYTES = 1024
STATUSES = ("SUCCESS", "FAILED")
ECHOED_FIELDS = ("StackId", "RequestId", "LogicalResourceId")


@dataclass(frozen=True)
class Violation:
    """One way a response (or the lack of one) breaks the protocol."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def timeout_message(request_id: str) -> str:
    """The reason CloudFormation records when no response arrives before ServiceTimeout."""
    return (
        "CloudFormation did not receive a response from your Custom Resource. "
        f"Please check your logs for requestId [{request_id}]. If you are using the Python cfn-response "
        "module, you may need to update your Lambda function code so that CloudFormation can attach the "
        "updated version."
    )


def check_body(event: dict[str, Any], raw: bytes) -> tuple[dict[str, Any] | None, list[Violation]]:
    """Parse and validate one response body against the event it answers."""
    violations: list[Violation] = []
    if len(raw) > MAX_BODY_BYTES:
        violations.append(
            Violation("body-too-long", f"Response object is too long ({len(raw)} bytes > {MAX_BODY_BYTES}).")
        )
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return None, [*violations, Violation("invalid-json", f"Invalid response object: not JSON ({exc}).")]
    if not isinstance(body, dict):
        return None, [*violations, Violation("invalid-json", "Invalid response object: not a JSON object.")]
    violations.extend(check_fields(event, body))
    return body, violations


def check_fields(event: dict[str, Any], body: dict[str, Any]) -> list[Violation]:
    """Validate the fields of a parsed response."""
    violations: list[Violation] = []
    status = body.get("Status")
    if status not in STATUSES:
        violations.append(Violation("status", f"Status must be SUCCESS or FAILED, got {status!r}."))
    reason = body.get("Reason")
    if status == "FAILED" and (not isinstance(reason, str) or not reason.strip()):
        violations.append(Violation("reason-missing", "A FAILED response must carry a Reason."))
    if reason is not None and not isinstance(reason, str):
        violations.append(Violation("reason-type", f"Reason must be a string, got {type(reason).__name__}."))
    violations.extend(_check_physical_id(event, body.get("PhysicalResourceId")))
    for name in ECHOED_FIELDS:
        if body.get(name) != event.get(name):
            violations.append(
                Violation(
                    "echo-mismatch",
                    f"{name} must be copied verbatim from the request "
                    f"(expected {event.get(name)!r}, got {body.get(name)!r}).",
                )
            )
    violations.extend(check_data(body.get("Data")))
    no_echo = body.get("NoEcho")
    if no_echo is not None and not isinstance(no_echo, bool) and no_echo not in ("true", "false"):
        violations.append(Violation("noecho-type", f"NoEcho must be a boolean, got {no_echo!r}."))
    return violations


def _check_physical_id(event: dict[str, Any], physical_id: Any) -> list[Violation]:
    if not isinstance(physical_id, str) or not physical_id:
        return [
            Violation("physical-id-missing", f"PhysicalResourceId must be a non-empty string, got {physical_id!r}.")
        ]
    violations = []
    size = len(physical_id.encode())
    if size > MAX_PHYSICAL_ID_BYTES:
        violations.append(
            Violation("physical-id-too-long", f"PhysicalResourceId is {size} bytes (at most {MAX_PHYSICAL_ID_BYTES}).")
        )
    if event.get("RequestType") == "Delete" and physical_id != event.get("PhysicalResourceId"):
        violations.append(
            Violation(
                "physical-id-changed-on-delete",
                f"Delete must return the PhysicalResourceId it was given ({event.get('PhysicalResourceId')!r}), "
                f"got {physical_id!r}.",
            )
        )
    return violations


def check_data(data: Any) -> list[Violation]:
    """``Data`` must be a flat object; every value should be a string (what Fn::GetAtt reads)."""
    if data is None:
        return []
    if not isinstance(data, dict):
        return [Violation("data-not-object", f"Data must be a JSON object, got {type(data).__name__}.")]
    violations = []
    for key, value in data.items():
        if isinstance(value, dict | list):
            violations.append(
                Violation(
                    "data-nested", f"Data[{key!r}] is a nested {type(value).__name__}; Fn::GetAtt cannot read it."
                )
            )
        elif not isinstance(value, str):
            violations.append(
                Violation("data-not-string", f"Data[{key!r}] is {type(value).__name__} {value!r}, not a string.")
            )
    return violations


def check_responses(
    responses: list[ReceivedResponse], deliveries: int, timed_out: bool, deadline: float
) -> list[Violation]:
    """What only all the responses to one request show: the first came after ServiceTimeout, there are
    more than deliveries, or they disagree on Status or PhysicalResourceId."""
    violations = []
    if timed_out and responses:
        late = responses[0].modelled - deadline
        violations.append(Violation("late-response", f"Response arrived {late:.1f} s (modelled) after ServiceTimeout."))
    if len(responses) > deliveries:
        count = f"{len(responses)} responses were PUT for one request"
        violations.append(Violation("duplicate-response", f"{count} (exactly one expected)."))
    bodies = [r.parsed if isinstance(r.parsed, dict) else {} for r in responses]
    keys = {(str(body.get("Status")), str(body.get("PhysicalResourceId"))) for body in bodies}
    if len(keys) > 1:
        disagree = "; ".join(sorted(map(str, keys)))
        violations.append(Violation("inconsistent-responses", f"Responses to one request disagree: {disagree}"))
    return violations
