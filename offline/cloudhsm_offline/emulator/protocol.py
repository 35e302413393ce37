"""Wire formats: AWS JSON 1.1 (X-Amz-Target) and Smithy RPC v2 CBOR, requests in and responses out."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import cbor2

from cloudhsm_offline.emulator.errors import ApiError, SerializationError
from cloudhsm_offline.loopback import Reply

TARGET_PREFIX = "BaldrApiService"
JSON = "json"
CBOR = "smithy-rpc-v2-cbor"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
CBOR_CONTENT_TYPE = "application/cbor"
CBOR_PATH = re.compile(rf"/service/{TARGET_PREFIX}/operation/([A-Za-z0-9]+)")


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps_json(value: object) -> bytes:
    """JSON with datetimes as epoch-second numbers, as AWS JSON protocols send them."""
    return json.dumps(value, default=_json_default).encode()


def identify(method: str, path: str, headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``(protocol, operation)`` if this is an API request, else None; header names lower-cased."""
    if method != "POST":
        return None
    target = headers.get("x-amz-target")
    if path.split("?", 1)[0] == "/" and target:
        prefix, _, operation = target.partition(".")
        return (JSON, operation if prefix == TARGET_PREFIX else target)
    match = CBOR_PATH.fullmatch(path.split("?", 1)[0])
    if match:
        return (CBOR, match.group(1))
    return None


def decode(protocol: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The params in the body of an identified request; raises ``SerializationError`` if it is malformed."""
    if protocol == CBOR and headers.get("smithy-protocol") != "rpc-v2-cbor":
        raise SerializationError("Requests in RPC v2 CBOR must carry the header smithy-protocol: rpc-v2-cbor.")
    try:
        if not body:
            params: object = {}
        elif protocol == CBOR:
            params = cbor2.loads(body)
        else:
            params = json.loads(body)
    except (ValueError, cbor2.CBORDecodeError) as exc:
        raise SerializationError(f"Could not decode the request body: {exc}") from exc
    if not isinstance(params, dict):
        raise SerializationError("The request body must be an object.")
    return params


def encode_result(protocol: str, result: Mapping[str, Any], request_id: str) -> Reply:
    """A 200 response carrying ``result`` in ``protocol``."""
    return Reply(200, _headers(protocol, request_id), _body(protocol, result))


def encode_error(protocol: str, error: ApiError, request_id: str) -> Reply:
    """An error response: ``{"__type", "message"}`` with the error's HTTP status."""
    headers = _headers(protocol, request_id)
    headers["x-amzn-ErrorType"] = error.code
    return Reply(error.status, headers, _body(protocol, {"__type": error.code, "message": str(error)}))


def _headers(protocol: str, request_id: str) -> dict[str, str]:
    headers = {"x-amzn-RequestId": request_id}
    if protocol == CBOR:
        headers["Content-Type"] = CBOR_CONTENT_TYPE
        headers["smithy-protocol"] = "rpc-v2-cbor"
    else:
        headers["Content-Type"] = JSON_CONTENT_TYPE
    return headers


def _body(protocol: str, value: Mapping[str, Any]) -> bytes:
    if protocol == CBOR:
        return cbor2.dumps(dict(value), datetime_as_timestamp=True)
    return dumps_json(value)
