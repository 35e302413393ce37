"""The HTTP gateway in front of moto: tells which API a call is, checks what AWS checks and moto skips.

EventBridge's own limits (rule names at most 64 characters of [.-_A-Za-z0-9], a valid ``rate()``, target
``Input`` valid JSON of at most 8192 characters: EventBridge API reference, PutRule/PutTargets) are enforced
here; each call is recorded as an ``ApiCall`` without secrets (never the target Input).

Injected faults (``cloudhsm_offline.faults``) are answered with the codes and statuses of each service's
botocore model and API reference:
- events (JSON 1.1): AccessDeniedException 400, ThrottlingException 400, InternalException 500,
  ConcurrentModificationException 400;
- ssm (JSON 1.1): AccessDeniedException 400, ThrottlingException 400, InternalServerError 500,
  TooManyUpdates 400;
- lambda (REST-JSON, code in x-amzn-ErrorType): AccessDeniedException 403, TooManyRequestsException 429,
  ServiceException 500, ResourceConflictException 409 ("another operation is in progress").
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from cloudhsm_offline.faults import CONFLICT, DENY, FAIL, THROTTLE, denied_message
from cloudhsm_offline.loopback import LoopbackServer, Reply, Request

FAULT_ERRORS: dict[str, dict[str, tuple[int, str]]] = {
    "events": {
        DENY: (400, "AccessDeniedException"),
        THROTTLE: (400, "ThrottlingException"),
        FAIL: (500, "InternalException"),
        CONFLICT: (400, "ConcurrentModificationException"),
    },
    "ssm": {
        DENY: (400, "AccessDeniedException"),
        THROTTLE: (400, "ThrottlingException"),
        FAIL: (500, "InternalServerError"),
        CONFLICT: (400, "TooManyUpdates"),
    },
    "lambda": {
        DENY: (403, "AccessDeniedException"),
        THROTTLE: (429, "TooManyRequestsException"),
        FAIL: (500, "ServiceException"),
        CONFLICT: (409, "ResourceConflictException"),
    },
}
FAULT_MESSAGES = {
    THROTTLE: "Rate exceeded",
    FAIL: "An internal error occurred (injected by the offline gateway).",
    CONFLICT: "The operation cannot be performed at this time. Another operation is in progress.",
}
PROVIDER_PRINCIPAL = "arn:aws:sts::000000000000:assumed-role/provider/function"
MAX_RULE_NAME = 64
MAX_TARGET_INPUT = 8192
RULE_NAME = re.compile(r"^[\.\-_A-Za-z0-9]+$")
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between firings of a valid ``rate(...)`` expression, else None."""
    match = RATE.match(expression or "")
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    if value < 1 or (value == 1) != (not unit.endswith("s")):
        return None
    return float(value * UNIT_SECONDS[unit.rstrip("s")])


@dataclass
class ApiCall:
    """One call the function made to the events/lambda/logs APIs."""

    service: str
    operation: str
    modelled: float
    status: int
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def _validation(message: str) -> tuple[int, dict[str, str]]:
    return 400, {"__type": "ValidationException", "message": message}


def check_events_call(operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str]] | None:
    """EventBridge's own validation of PutRule/PutTargets that moto skips; None if valid."""
    if operation == "PutRule":
        name = str(params.get("Name", ""))
        if len(name) > MAX_RULE_NAME:
            return _validation(
                f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_RULE_NAME}"
            )
        if not RULE_NAME.match(name):
            return _validation(
                f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
            )
        expression = params.get("ScheduleExpression")
        if expression is not None and rate_seconds(str(expression)) is None and not str(expression).startswith("cron("):
            return _validation("Parameter ScheduleExpression is not valid.")
    if operation == "PutTargets":
        for index, target in enumerate(params.get("Targets", []), start=1):
            text = target.get("Input")
            if text is None:
                continue
            if len(text) > MAX_TARGET_INPUT:
                return _validation(
                    f"1 validation error detected: Value at 'targets.{index}.member.input' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {MAX_TARGET_INPUT}"
                )
            try:
                json.loads(text)
            except ValueError:
                return _validation(f"Target {target.get('Id')} Input is not valid JSON text.")
    return None


SERVICES = {"AWSEvents": "events", "AmazonSSM": "ssm"}
"""X-Amz-Target prefixes of the JSON 1.1 services the provider calls."""
_LAMBDA_ROUTES = (
    ("POST", re.compile(r"^/2015-03-31/functions/([^/]+)/policy$"), "AddPermission"),
    ("DELETE", re.compile(r"^/2015-03-31/functions/([^/]+)/policy/([^/?]+)"), "RemovePermission"),
    ("GET", re.compile(r"^/2015-03-31/functions/([^/]+)/policy"), "GetPolicy"),
)


def classify(method: str, path: str, headers: Any, body: bytes) -> tuple[str, str, dict[str, Any]]:
    target = headers.get("x-amz-target", "")
    params: dict[str, Any] = {}
    if target:
        service_prefix, _, operation = target.partition(".")
        with contextlib.suppress(ValueError):
            params = json.loads(body or b"{}")
        service = SERVICES.get(service_prefix, "logs" if "Logs" in service_prefix else service_prefix)
        return service, operation, params
    bare = path.split("?", maxsplit=1)[0]
    for verb, pattern, operation in _LAMBDA_ROUTES:
        match = pattern.match(bare)
        if method == verb and match:
            with contextlib.suppress(ValueError):
                params = json.loads(body or b"{}")
            params["FunctionName"] = match.group(1)
            if operation == "RemovePermission":
                params["StatementId"] = match.group(2)
            return "lambda", operation, params
    return "lambda" if bare.startswith("/2015-03-31/") else "other", f"{method} {bare}", params


class GatewayServer(LoopbackServer):
    """The gateway's loopback server: every request goes to ``owner.handle``."""

    def __init__(self, owner: GatewayOwner) -> None:
        super().__init__(owner.handle)


class GatewayOwner(Protocol):
    """What the gateway server hands each request to."""

    def handle(self, request: Request) -> Reply:
        """Answer one request."""


def fault_answer(service: str, fault: str, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """An injected fault as ``service`` answers it: status, headers, body."""
    status, code = FAULT_ERRORS[service][fault]
    resource = next((str(params[key]) for key in ("Name", "Rule", "FunctionName") if key in params), "*")
    if fault == DENY:
        message = denied_message(PROVIDER_PRINCIPAL, f"{service}:{operation}", resource)
    else:
        message = FAULT_MESSAGES[fault]
    if service == "lambda":
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
        body = json.dumps({"Type": "User", "message": message}).encode()
    else:
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        body = json.dumps({"__type": code, "message": message}).encode()
    return status, {**headers, "x-amzn-RequestId": "offline-gateway-fault"}, body


def error_code(headers: dict[str, str], data: bytes) -> str:
    """The AWS error code of a response (x-amzn-ErrorType, or the JSON body's __type/Type)."""
    for key, value in headers.items():
        if key.lower() == "x-amzn-errortype":
            return value.split(":")[0]
    with contextlib.suppress(ValueError, AttributeError):
        payload = json.loads(data)
        return str(payload.get("__type") or payload.get("Type") or payload.get("message", "error")).split("#")[-1]
    return "error"


def summarise(params: dict[str, Any]) -> dict[str, Any]:
    """Keep the call parameters worth reporting; never the target Input (it holds the ResponseURL)."""
    keep: dict[str, Any] = {}
    for key in ("Name", "Rule", "ScheduleExpression", "State", "FunctionName", "StatementId", "Principal", "Ids"):
        if key in params:
            keep[key] = params[key]
    if "Targets" in params:
        keep["Targets"] = [
            {"Id": t.get("Id"), "Arn": t.get("Arn"), "InputChars": len(t.get("Input") or "")} for t in params["Targets"]
        ]
    return keep
