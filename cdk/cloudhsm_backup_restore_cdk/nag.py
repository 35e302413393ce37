"""cdk-nag acknowledgments whose ids are built from the resource exactly as cdk-nag renders it.

cdk-nag 3 (``NagPack.isAcknowledged``) matches an acknowledgment id exactly against ``<rule>[<finding>]``,
where an IAM5 finding is ``Resource::`` + the statement's resource after ``Stack.of(node).resolve`` and
``flattenCfnReference`` (``src/utils/flatten-cfn-reference.ts``): ``${X}`` and ``Ref`` become ``<X>``,
``Fn::GetAtt`` ``<X.Attr>``, ``Fn::Join`` is joined, and any other intrinsic falls back to
``JSON.stringify``. With an explicit env or partition literals the same ARN resolves to literals
(``arn:aws:events:eu-west-1:111122223333:...``), so the id is computed from the same resolution, never
written by hand.

The ids are left unqualified (no ``AwsSolutions::`` prefix): aws-cdk-lib then records them as annotation
acknowledgments on this construct only, and cdk-nag honours them for this resource and its children. A
prefixed id would instead be matched by aws-cdk-lib against every finding of that plugin in the whole app
(aws/aws-cdk#38495), silencing the same wildcard in the user's own resources.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

WILDCARD_RULES = ("AwsSolutions-IAM5",)
"""The packs' wildcard-permission rules whose findings carry the resource (AwsSolutions; the other packs
report wildcards in actions only, and this project grants no wildcard action)."""


def flatten_cfn_reference(value: Any) -> str:
    """Python twin of cdk-nag's ``flattenCfnReference``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict):
        if value.get("Fn::Join"):
            delimiter, items = value["Fn::Join"]
            return str(delimiter).join(flatten_cfn_reference(item) for item in items)
        if value.get("Fn::Sub"):
            return flatten_cfn_reference(value["Fn::Sub"])
        if value.get("Fn::GetAtt"):
            resource, attribute = value["Fn::GetAtt"]
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if value.get("Fn::ImportValue"):
            return flatten_cfn_reference(value["Fn::ImportValue"])
        if value.get("Ref"):
            return f"<{flatten_cfn_reference(value['Ref'])}>"
    # JSON.stringify: compact separators, keys in insertion order.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def wildcard_finding(scope: IConstruct, resource: str) -> str:
    """The ``Resource::...`` finding cdk-nag reports for ``resource`` in a policy of ``scope``'s stack."""
    return "Resource::" + flatten_cfn_reference(Stack.of(scope).resolve(resource))


def acknowledge_wildcard(scope: IConstruct, resource: str, reason: str) -> str:
    """Acknowledge the wildcard finding for ``resource`` on ``scope`` (a policy); returns the finding id."""
    finding = wildcard_finding(scope, resource)
    for rule in WILDCARD_RULES:
        Validations.of(scope).acknowledge(Acknowledgment(id=f"{rule}[{finding}]", reason=reason))
    return finding
