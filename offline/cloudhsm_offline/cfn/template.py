"""A CloudFormation template as the offline runner sees it: parameters, conditions and intrinsics.

Only what a custom-resource consumer template needs is evaluated: parameters (defaults, AllowedValues,
AllowedPattern), pseudo parameters, Conditions, and the intrinsics Ref, Fn::Sub, Fn::GetAtt, Fn::If,
Fn::Join, Fn::Select, Fn::Split, Fn::Equals/Not/And/Or, Fn::ImportValue (our ServiceToken). Other
resource types are skipped; Fn::GetAtt <Function>.Arn of a provider function gives its ARN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfnlint.decode import decode, decode_str

from cloudhsm_offline.cfn.simulator import CloudFormationSimulator

CUSTOM_TYPES = ("AWS::CloudFormation::CustomResource",)
FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")
NO_VALUE = object()
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(Exception):
    """The template cannot be run (bad parameter, unsupported intrinsic, missing attribute)."""


def load_template(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Parse a YAML/JSON template (short tags included) or accept a dict."""
    if isinstance(source, Mapping):
        return dict(source)
    text = str(source)
    if "\n" in text or not Path(text).exists():
        template, matches = decode_str(text)
    else:
        template, matches = decode(text)
    if template is None:
        raise TemplateError("cannot parse template: " + "; ".join(str(m) for m in matches or []))
    plain: dict[str, Any] = _plain(template)
    return plain


def _plain(value: Any) -> Any:
    """cfn-lint's node types as plain dicts, lists and strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def resolve_parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """A template's parameter values: defaults plus given values, checked against AllowedValues and AllowedPattern."""
    declared = template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in given:
            value = str(given[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} needs a value (--param {name}=...)")
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(str(pattern), value):
            raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
        values[name] = value
    return values


def partition_of(region: str) -> str:
    """The ARN partition of a region: aws-cn for cn-*, aws-us-gov for us-gov-*, else aws."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def is_custom(resource: Mapping[str, Any]) -> bool:
    """Whether a resource is a custom resource."""
    kind = str(resource.get("Type", ""))
    return kind.startswith("Custom::") or kind in CUSTOM_TYPES


class TemplateResolver:
    """A template's parameters, conditions and intrinsics, resolved against a simulated stack."""

    def __init__(
        self,
        simulator: CloudFormationSimulator,
        template: str | Path | Mapping[str, Any],
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.simulator = simulator
        self.template = load_template(template)
        self.resources: dict[str, Any] = dict(self.template.get("Resources") or {})
        self.parameters = self.resolve_parameters(parameters or {})
        self.data: dict[str, dict[str, Any]] = {}
        self.physical: dict[str, str] = {}

    # -- parameters and conditions -----------------------------------------------------------------

    def resolve_parameters(self, given: Mapping[str, str]) -> dict[str, str]:
        """Defaults plus given values, checked against AllowedValues and AllowedPattern."""
        return resolve_parameters(self.template, given)

    def pseudo(self) -> dict[str, str]:
        """Pseudo parameters of the simulated stack."""
        sim = self.simulator
        return {
            "AWS::Region": sim.region,
            "AWS::AccountId": sim.account,
            "AWS::StackName": sim.stack_name,
            "AWS::StackId": sim.stack_id,
            "AWS::Partition": partition_of(sim.region),
            "AWS::URLSuffix": "amazonaws.com.cn" if sim.region.startswith("cn-") else "amazonaws.com",
            "AWS::NotificationARNs": "",
        }

    def condition(self, name: str) -> bool:
        """Evaluate a named condition."""
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(conditions[name]))

    # -- intrinsics --------------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsics in a value; ``NO_VALUE`` entries are dropped."""
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._intrinsic(key, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _intrinsic(self, key: str, arg: Any) -> Any:
        handlers: dict[str, Any] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::ImportValue": lambda _arg: self.simulator.service_token,
            "Fn::Join": lambda a: str(self.resolve(a[0])).join(str(x) for x in self.resolve(a[1])),
            "Fn::Select": lambda a: self.resolve(a[1])[int(self.resolve(a[0]))],
            "Fn::Split": lambda a: str(self.resolve(a[1])).split(str(self.resolve(a[0]))),
            "Fn::If": lambda a: self.resolve(a[1] if self.condition(a[0]) else a[2]),
            "Fn::Equals": lambda a: str(self.resolve(a[0])) == str(self.resolve(a[1])),
            "Fn::Not": lambda a: not self.resolve(a[0]),
            "Fn::And": lambda a: all(self.resolve(x) for x in a),
            "Fn::Or": lambda a: any(self.resolve(x) for x in a),
            "Condition": self.condition,
            "Fn::ToJsonString": lambda a: json.dumps(self.resolve(a), separators=(",", ":")),
        }
        if key not in handlers:
            raise TemplateError(f"{key} is not supported by the offline runner")
        return handlers[key](arg)

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.resources:
            if is_custom(self.resources[name]):
                if name not in self.physical:
                    raise TemplateError(f"Ref {name}: the resource has no physical id yet")
                return self.physical[name]
            if self.resources[name].get("Type") in FUNCTION_TYPES:
                return self.simulator.function.function_name
            return f"offline-{name}"
        raise TemplateError(f"Ref to unknown name {name}")

    def _get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            logical, _, attribute = arg.partition(".")
        else:
            logical, attribute = str(arg[0]), str(self.resolve(arg[1]))
        resource = self.resources.get(logical)
        if resource is None:
            raise TemplateError(f"Fn::GetAtt on unknown resource {logical}")
        if resource.get("Type") in FUNCTION_TYPES and attribute == "Arn":
            return self.simulator.function.arn
        if not is_custom(resource):
            return f"offline-{logical}.{attribute}"
        data = self.data.get(logical)
        if data is None:
            raise TemplateError(f"Fn::GetAtt {logical}.{attribute}: {logical} was not created")
        if attribute not in data:
            raise TemplateError(
                f"CustomResource attribute error: Vendor response doesn't contain {attribute} key in object "
                f"{self.simulator.stack_id}|{logical}|{self.physical.get(logical, '')}"
            )
        return data[attribute]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return str(self._get_att(name))
            return str(self._ref(name))

        return SUB_VARIABLE.sub(replace, str(text)).replace("${!", "${")
