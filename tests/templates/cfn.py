"""Helpers for reading CloudFormation templates (short-form tags included) and linting them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint
from cfnlint.decode.decode import decode_str
from cfnlint.helpers import REGIONS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "cfn-templates"
NO_VALUE = {"Ref": "AWS::NoValue"}


def load(text: str) -> dict[str, Any]:
    """Parse a template (YAML or JSON, !Ref/!Sub/!GetAtt...) into plain long-form dicts."""
    template, errors = decode_str(text)
    assert not errors, errors
    assert template is not None
    plain: dict[str, Any] = json.loads(json.dumps(template))
    return plain


def load_file(name: str) -> dict[str, Any]:
    """Parse cfn-templates/<name>."""
    return load((TEMPLATES / name).read_text(encoding="utf-8"))


def findings(text: str) -> list[str]:
    """Every cfn-lint finding (errors, warnings, informational, experimental) in all regions."""
    config = ManualArgs(include_checks=["I"], include_experimental=True, regions=REGIONS)
    return [f"{match.rule.id} {match.message} (line {match.linenumber})" for match in lint(text, config=config)]


def resolve(value: Any, conditions: Mapping[str, bool]) -> Any:
    """Evaluate Fn::If with the given condition values and drop AWS::NoValue."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return resolve(when_true if conditions[name] else when_false, conditions)
        resolved = {key: resolve(item, conditions) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item != NO_VALUE}
    if isinstance(value, list):
        return [resolve(item, conditions) for item in value if resolve(item, conditions) != NO_VALUE]
    return value


def as_list(value: Any) -> list[Any]:
    """A policy field that may be one value or a list."""
    return value if isinstance(value, list) else [value]


def resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one Type, by logical id."""
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def policy_statements(template: Mapping[str, Any], conditions: Mapping[str, bool]) -> Iterator[dict[str, Any]]:
    """Every IAM statement the role's inline policies and the policy resources created under ``conditions`` grant."""
    for role in resources_of_type(template, "AWS::IAM::Role").values():
        for policy in resolve(role["Properties"].get("Policies", []), conditions):
            yield from as_list(policy["PolicyDocument"]["Statement"])
    for kind in ("AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy"):
        for policy in resources_of_type(template, kind).values():
            if conditions.get(policy.get("Condition", ""), True):
                yield from as_list(resolve(policy["Properties"]["PolicyDocument"]["Statement"], conditions))


def statement_with(template: Mapping[str, Any], action: str, conditions: Mapping[str, bool]) -> dict[str, Any]:
    """The one statement granting ``action``."""
    found = [s for s in policy_statements(template, conditions) if action in as_list(s["Action"])]
    assert len(found) == 1, (action, found)
    return found[0]
