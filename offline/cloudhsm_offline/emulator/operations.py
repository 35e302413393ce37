"""The backup, tag and cluster operations: request validation like the service, filtering and pagination."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from cloudhsm_offline.emulator.account import BackupStore
from cloudhsm_offline.emulator.errors import InvalidRequestError, UnknownOperationError
from cloudhsm_offline.emulator.model import BACKUP_ID_PATTERN, BackupState

MAX_PAGE = 50
MAX_FILTERS = 30
MAX_TOKEN = 256
FILTER_KEY_PATTERN = re.compile(r"[a-zA-Z0-9_-]+")
RESOURCE_ID_PATTERN = re.compile(r"(?:cluster|backup)-[2-7a-zA-Z]{11,16}")
KNOWN_FILTERS = ("backupIds", "sourceBackupIds", "clusterIds", "states", "neverExpires")

Params = dict[str, Any]
Result = dict[str, Any]


def _constraint(value: object, member: str, rule: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}"
    )


def _id(params: Params, member: str, pattern: re.Pattern[str]) -> str:
    value = params.get(member)
    if value is None:
        raise InvalidRequestError(f"{member} is required.")
    if not isinstance(value, str) or not pattern.fullmatch(value):
        wire = member[0].lower() + member[1:]
        raise _constraint(value, wire, f"Member must satisfy regular expression pattern: {pattern.pattern}")
    return value


def _boolean(params: Params, member: str, required: bool = False) -> bool | None:
    value = params.get(member)
    if value is None:
        if required:
            raise InvalidRequestError(f"{member} is required.")
        return None
    if not isinstance(value, bool):
        raise _constraint(value, member, "Member must be a boolean")
    return value


def _restore_backup(store: BackupStore, params: Params) -> Result:
    return {"Backup": store.restore(_id(params, "BackupId", BACKUP_ID_PATTERN))}


def _delete_backup(store: BackupStore, params: Params) -> Result:
    return {"Backup": store.delete(_id(params, "BackupId", BACKUP_ID_PATTERN))}


def _modify_backup_attributes(store: BackupStore, params: Params) -> Result:
    backup_id = _id(params, "BackupId", BACKUP_ID_PATTERN)
    never_expires = _boolean(params, "NeverExpires", required=True)
    assert never_expires is not None
    return {"Backup": store.modify(backup_id, never_expires)}


def _tag_resource(store: BackupStore, params: Params) -> Result:
    """TagResource (ResourceId a backup or cluster id; TagList 1-50 tags): an empty result."""
    tags = params.get("TagList")
    if not isinstance(tags, list) or not 1 <= len(tags) <= MAX_PAGE:
        raise _constraint(tags, "tagList", "Member must have length between 1 and 50")
    if not all(isinstance(t, dict) and isinstance(t.get("Key"), str) and isinstance(t.get("Value"), str) for t in tags):
        raise _constraint(tags, "tagList", "Each member must have a Key and a Value")
    try:
        store.tag(_id(params, "ResourceId", RESOURCE_ID_PATTERN), tags)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    return {}


def _untag_resource(store: BackupStore, params: Params) -> Result:
    """UntagResource (TagKeyList 1-50 keys): an empty result."""
    keys = params.get("TagKeyList")
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_PAGE or not all(isinstance(k, str) for k in keys):
        raise _constraint(keys, "tagKeyList", "Member must have length between 1 and 50")
    store.untag(_id(params, "ResourceId", RESOURCE_ID_PATTERN), keys)
    return {}


def _list_tags(store: BackupStore, params: Params) -> Result:
    """ListTags: every tag in one page (a resource has at most 50)."""
    return {"TagList": store.list_tags(_id(params, "ResourceId", RESOURCE_ID_PATTERN))}


def _describe_clusters(store: BackupStore, params: Params) -> Result:
    """DescribeClusters: filter clusterIds and states; one page (NextToken not modelled)."""
    filters = params.get("Filters") or {}
    if not isinstance(filters, dict):
        raise _constraint(filters, "filters", "Member must be a map")
    views = store.cluster_views()
    if "clusterIds" in filters:
        views = [v for v in views if v["ClusterId"] in filters["clusterIds"]]
    if "states" in filters:
        views = [v for v in views if v["State"] in filters["states"]]
    return {"Clusters": views}


def _describe_backups(store: BackupStore, params: Params) -> Result:
    """DescribeBackups: filters, sort order and NextToken pagination."""
    page_size = _max_results(params)
    filters = _filters(params)
    ascending = bool(_boolean(params, "SortAscending"))
    _boolean(params, "Shared")
    fingerprint = hashlib.sha256(json.dumps([filters, ascending], sort_keys=True).encode()).hexdigest()[:16]
    offset = _offset(params, fingerprint)

    views = [v for v in store.views() if _matches(v, filters)]
    views.sort(key=lambda v: (v["CreateTimestamp"], v["BackupId"]), reverse=not ascending)
    page = views[offset : offset + page_size]
    result: Result = {"Backups": page}
    if offset + page_size < len(views):
        result["NextToken"] = _encode_token(offset + page_size, fingerprint)
    return result


OPERATIONS: dict[str, Callable[[BackupStore, Params], Result]] = {
    "DescribeBackups": _describe_backups,
    "RestoreBackup": _restore_backup,
    "DeleteBackup": _delete_backup,
    "ModifyBackupAttributes": _modify_backup_attributes,
    "TagResource": _tag_resource,
    "UntagResource": _untag_resource,
    "ListTags": _list_tags,
    "DescribeClusters": _describe_clusters,
}
"""The operations the emulator answers, by name."""


def call(store: BackupStore, operation: str, params: Params) -> Result:
    """Run ``operation`` with ``params`` on ``store``; raises ``ApiError`` for anything the service would reject."""
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise UnknownOperationError(f"The emulator does not implement the operation {operation}.")
    return handler(store, params)


def _max_results(params: Params) -> int:
    value = params.get("MaxResults")
    if value is None:
        return MAX_PAGE
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE:
        raise _constraint(
            value, "maxResults", f"Member must have value less than or equal to {MAX_PAGE} and at least 1"
        )
    return value


def _filters(params: Params) -> dict[str, list[str]]:
    raw = params.get("Filters")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _constraint(raw, "filters", "Member must be a map")
    if len(raw) > MAX_FILTERS:
        raise _constraint(len(raw), "filters", f"Member must have at most {MAX_FILTERS} entries")
    filters: dict[str, list[str]] = {}
    for key, values in raw.items():
        if not isinstance(key, str) or not FILTER_KEY_PATTERN.fullmatch(key):
            raise _constraint(key, "filters", f"Map keys must satisfy pattern {FILTER_KEY_PATTERN.pattern}")
        if key not in KNOWN_FILTERS:
            raise InvalidRequestError(f"Invalid filter name: {key}. Valid filters are: {', '.join(KNOWN_FILTERS)}.")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _constraint(values, f"filters.{key}", "Member must be a list of strings")
        filters[key] = list(values)
    for state in filters.get("states", []):
        if state not in BackupState.__members__:
            raise InvalidRequestError(f"Invalid value for filter states: {state}.")
    for flag in filters.get("neverExpires", []):
        if flag.lower() not in ("true", "false"):
            raise InvalidRequestError(f"Invalid value for filter neverExpires: {flag}.")
    return filters


def _offset(params: Params, fingerprint: str) -> int:
    token = params.get("NextToken")
    if token is None:
        return 0
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise InvalidRequestError("The NextToken is invalid.")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, token_fingerprint = decoded["o"], decoded["f"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidRequestError("The NextToken is invalid.") from exc
    if token_fingerprint != fingerprint or not isinstance(offset, int) or offset < 0:
        raise InvalidRequestError("The NextToken does not match the request's filters or sort order.")
    return offset


def _encode_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "f": fingerprint}).encode()).decode()


_FILTER_FIELDS: dict[str, Callable[[dict[str, Any]], object]] = {
    "backupIds": lambda v: v["BackupId"],
    "sourceBackupIds": lambda v: v.get("SourceBackup"),
    "clusterIds": lambda v: v["ClusterId"],
    "states": lambda v: v["BackupState"],
    "neverExpires": lambda v: str(v["NeverExpires"]).lower(),
}


def _matches(view: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        accepted = {v.lower() for v in values} if key == "neverExpires" else set(values)
        if _FILTER_FIELDS[key](view) not in accepted:
            return False
    return True
