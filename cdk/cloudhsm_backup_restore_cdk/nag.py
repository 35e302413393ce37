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
prefixed id is matched by aws-cdk-lib itself, and on 2.269.0 against every finding of that plugin in the whole
app (aws/aws-cdk#38495): it silenced the same wildcard in the user's own resources (checked; 2.275.0 scopes it).
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
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


V2_METADATA_KEY = "cdk_nag"
"""Where cdk-nag 2 reads suppressions: the CfnResource's template Metadata (``NagSuppressionHelper``)."""


def _suppress_for_cdk_nag_2(scope: IConstruct, rule: str, reason: str, applies_to: str | None) -> None:
    """The same acknowledgment in cdk-nag 2's format (``rules_to_suppress``, finding ids in ``applies_to``)."""
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        # Nothing synthesized to check: iam.Role.customize_roles reports policies instead of creating them.
        return
    rules: list[dict[str, Any]] = list((resource.get_metadata(V2_METADATA_KEY) or {}).get("rules_to_suppress", []))
    for existing in rules:
        if existing["id"] == rule and applies_to is not None and "applies_to" in existing:
            existing["applies_to"] = [*existing["applies_to"], applies_to]
            existing["reason"] += f"; {reason}"
            break
    else:
        rules.append({"id": rule, "reason": reason, **({"applies_to": [applies_to]} if applies_to else {})})
    resource.add_metadata(V2_METADATA_KEY, {"rules_to_suppress": rules})


def acknowledge(scope: IConstruct, rule: str, reason: str, *, finding: str | None = None) -> None:
    """Acknowledge ``rule`` (or one ``finding`` of it) on ``scope``, for cdk-nag 3 and for cdk-nag 2."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{rule}[{finding}]" if finding else rule, reason=reason))
    _suppress_for_cdk_nag_2(scope, rule, reason, finding)


def acknowledge_wildcard(scope: IConstruct, resource: str, reason: str) -> str:
    """Acknowledge the wildcard finding for ``resource`` on ``scope`` (a policy); returns the finding id."""
    finding = wildcard_finding(scope, resource)
    for rule in WILDCARD_RULES:
        acknowledge(scope, rule, reason, finding=finding)
    return finding
