"""Names for crhelper's polling hand-off that EventBridge and Lambda accept for any LogicalResourceId."""

from __future__ import annotations

import hashlib
import re
import secrets

POLL_RULE_PREFIX = "cloudhsm-restore-"
"""Every EventBridge rule the provider creates starts with this: IAM scopes events:* to it."""
RESPONSE_PARAMETER_PREFIX = "/cloudhsm-restore/"
"""While a wait is handed off, the ResponseURL waits in an SSM SecureString under this prefix, not in the
EventBridge target's Input (readable with events:ListTargetsByRule and recorded by CloudTrail)."""
PROVIDER_ID_ENV = "CLOUDHSM_RESTORE_PROVIDER_ID"
"""Environment variable set at deploy time to an id unique to one provider (CDK and the templates: the last
12 hex digits of the stack's GUID, see contract.provider_id_expression). Rule and parameter names carry it, and
the provider's IAM grants and its one deploy-time invoke permission are scoped to it, so two providers in one
account and region can neither read each other's ResponseURLs nor touch each other's rules."""
PROVIDER_ID_PATTERN = re.compile(r"[a-z0-9]{1,12}")


def poll_rule_prefix(provider_id: str) -> str:
    """The prefix of every EventBridge rule one provider creates (IAM and the invoke permission name it + '*')."""
    return f"{POLL_RULE_PREFIX}{provider_id}-"


def response_parameter_prefix(provider_id: str) -> str:
    """The SSM path under which one provider parks ResponseURLs (IAM names it + '*')."""
    return f"{RESPONSE_PARAMETER_PREFIX}{provider_id}/"


RULE_NAME_LIMIT = 64
STATEMENT_ID_LIMIT = 100


def _short(logical_id: str, room: int) -> str:
    """The LogicalResourceId cut to ``room`` characters, with a hash when cut so names stay distinct."""
    if len(logical_id) <= room:
        return logical_id
    digest = hashlib.sha256(logical_id.encode()).hexdigest()[:8]
    return logical_id[: room - 9] + "-" + digest


def rule_name(logical_id: str) -> str:
    """A unique EventBridge rule name (at most 64 characters, [.-_A-Za-z0-9])."""
    suffix = "-" + secrets.token_hex(4)
    return POLL_RULE_PREFIX + _short(logical_id, RULE_NAME_LIMIT - len(POLL_RULE_PREFIX) - len(suffix)) + suffix


def statement_id(logical_id: str) -> str:
    """A unique Lambda permission statement id (at most 100 characters)."""
    suffix = "-" + secrets.token_hex(4)
    return POLL_RULE_PREFIX + _short(logical_id, STATEMENT_ID_LIMIT - len(POLL_RULE_PREFIX) - len(suffix)) + suffix


def response_parameter(rule: str) -> str:
    """The SSM parameter holding the ResponseURL of the wait that EventBridge rule ``rule`` polls."""
    return RESPONSE_PARAMETER_PREFIX + rule
