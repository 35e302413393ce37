"""Names and poll event format of the polling hand-off: scoped to one provider, valid for any LogicalResourceId."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from typing import Any

POLL_RULE_PREFIX = "cloudhsm-poll-"
"""Every EventBridge rule a provider creates starts with this plus its provider id (``poll_rule_prefix``)."""
RESPONSE_PARAMETER_PREFIX = "/cloudhsm-restore/"
"""While a wait is handed off, the ResponseURL waits in an SSM SecureString under this prefix plus the provider id,
not in the EventBridge target's Input (readable with events:ListTargetsByRule and recorded by CloudTrail)."""
PROVIDER_ID_ENV = "CLOUDHSM_RESTORE_PROVIDER_ID"
"""Environment variable set at deploy time to an id unique to one provider (CDK and the templates: the last
12 hex digits of the stack's GUID, see contract.provider_id_expression). Rule and parameter names carry it, and
the provider's IAM grants and its one deploy-time invoke permission are scoped to it, so two providers in one
account and region can neither read each other's ResponseURLs nor touch each other's rules."""
PROVIDER_ID_PATTERN = re.compile(r"[a-z0-9]{1,12}")

LEGACY_POLL_RULE_PREFIX = "cloudhsm-restore-"
"""Rules of the previous release (poll format 1): ``cloudhsm-restore-<LogicalId>-<hex>``, no provider id."""
LEGACY_RESPONSE_PARAMETER_PREFIX = RESPONSE_PARAMETER_PREFIX + LEGACY_POLL_RULE_PREFIX
"""Parameters of the previous release: ``/cloudhsm-restore/<legacy rule name>``; disjoint from every provider's."""

POLL_FORMAT_KEY = "CloudHsmRestorePollFormat"
"""The poll event's format version. Absent means format 1 (the previous release)."""
POLL_FORMAT = 2
"""What this release writes: provider-scoped names, no per-wait Lambda permission, a deadline, a sweep marker."""
ACCEPTED_POLL_FORMATS = (1, 2)
"""What this release runs: its own format and the previous release's (a wait begun before an update)."""
POLL_DEADLINE_KEY = "CloudHsmRestorePollDeadline"
"""Epoch seconds when CloudFormation stops waiting (start + ServiceTimeout): any poll after it only tears down."""
POLL_SWEEP_KEY = "CloudHsmRestorePollSweep"
"""Set on a rule whose wait was answered but whose clean-up failed: its next firing only cleans up."""
RESPONSE_PARAMETER_KEY = "CrHelperResponseParameter"
"""Poll events carry the name of the SSM parameter holding the ResponseURL instead of the URL itself."""
LEGACY_PERMISSION_KEY = "CrHelperPermission"
"""Format 1 events name the per-wait Lambda permission statement the previous release added."""

RULE_NAME_LIMIT = 64


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


def _short(logical_id: str, room: int) -> str:
    """The LogicalResourceId cut to ``room`` characters, with a hash when cut so names stay distinct."""
    if len(logical_id) <= room:
        return logical_id
    digest = hashlib.sha256(logical_id.encode()).hexdigest()[:8]
    return logical_id[: room - 9] + "-" + digest


def rule_name(provider_id: str, logical_id: str) -> str:
    """A unique EventBridge rule name under the provider's prefix (at most 64 characters, [.-_A-Za-z0-9])."""
    prefix = poll_rule_prefix(provider_id)
    suffix = "-" + secrets.token_hex(4)
    return prefix + _short(logical_id, RULE_NAME_LIMIT - len(prefix) - len(suffix)) + suffix


def response_parameter(provider_id: str, rule: str) -> str:
    """The SSM parameter holding the ResponseURL of the wait that EventBridge rule ``rule`` polls."""
    return response_parameter_prefix(provider_id) + rule


def rule_of(rule_arn: str) -> str:
    """The rule name in an EventBridge rule ARN (``arn:...:rule/<name>``)."""
    return rule_arn.rsplit("/", 1)[-1]


def poll_format(event: dict[str, Any]) -> int:
    """The poll event's format version: 1 when unmarked (the previous release), -1 when unreadable."""
    value = event.get(POLL_FORMAT_KEY, 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def poll_deadline(event: dict[str, Any]) -> float | None:
    """When CloudFormation stops waiting for this poll's resource; format 1 events derive it from their data."""
    if POLL_DEADLINE_KEY in event:
        with contextlib.suppress(TypeError, ValueError):
            return float(event[POLL_DEADLINE_KEY])
        return None
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        started = float(event["CrHelperData"]["WaitStartedAt"])
        return started + float(event.get("ResourceProperties", {}).get("ServiceTimeout") or 3600)
    return None
