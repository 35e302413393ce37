"""Names for crhelper's polling hand-off that EventBridge and Lambda accept for any LogicalResourceId."""

from __future__ import annotations

import hashlib
import secrets

POLL_RULE_PREFIX = "cloudhsm-restore-"
"""Every EventBridge rule the provider creates starts with this: IAM scopes events:* to it."""
RESPONSE_PARAMETER_PREFIX = "/cloudhsm-restore/"
"""While a wait is handed off, the ResponseURL waits in an SSM SecureString under this prefix, not in the
EventBridge target's Input (readable with events:ListTargetsByRule and recorded by CloudTrail)."""
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
