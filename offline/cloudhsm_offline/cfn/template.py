"""A CloudFormation template as the offline runner sees it: parameters, conditions and intrinsics.

Only what a custom-resource consumer template needs is evaluated: parameters (String, Number,
CommaDelimitedList and List<...> as lists; defaults, AllowedValues, AllowedPattern, lengths and
values), pseudo parameters, Mappings, Conditions, and the intrinsics in ``SUPPORTED``. Resources that
are not custom resources are not created and their properties are never evaluated: Ref gives
``offline-<LogicalId>``, Fn::GetAtt ``offline-<LogicalId>.<Attribute>``, and a Lambda function's Ref
and Arn give the provider function's. Fn::ImportValue of any name gives the provider's ServiceToken.
``check_runnable`` refuses, before anything starts, every construct and reference this cannot run.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfnlint.decode import decode, decode_str

from cloudhsm_offline import partition_of
from cloudhsm_offline.cfn.simulator import CloudFormationSimulator

CUSTOM_TYPES = ("AWS::CloudFormation::CustomResource",)
SUPPORTED = (
    "Ref",
    "Condition",
    "Fn::GetAtt",
    "Fn::Sub",
    "Fn::ImportValue",
    "Fn::Join",
    "Fn::Select",
    "Fn::Split",
    "Fn::If",
    "Fn::Equals",
    "Fn::Not",
    "Fn::And",
    "Fn::Or",
    "Fn::FindInMap",
    "Fn::Base64",
    "Fn::Length",
    "Fn::ToJsonString",
)
TRANSFORMS = ("AWS::Serverless-2016-10-31", "AWS::LanguageExtensions")
"""Transforms the runner accepts: SAM (its functions count as provider functions, nothing else of it is
created) and the language extensions (Fn::Length, Fn::ToJsonString). Any other macro is refused."""
LANGUAGE_EXTENSIONS = ("Fn::Length", "Fn::ToJsonString")
"""Intrinsics only the AWS::LanguageExtensions transform provides (CloudFormation Template Reference,
"AWS::LanguageExtensions transform": it enables "additional functions ... not available by default")."""
PSEUDO = (
    "AWS::Region",
    "AWS::AccountId",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NotificationARNs",
    "AWS::NoValue",
)
LIST_TYPES = ("CommaDelimitedList",)
"""Parameter types whose value is a list (besides every ``List<...>``): AWS CloudFormation User Guide,
"Parameters": "CommaDelimitedList: an array of literal strings separated by commas ... each member
string is space trimmed"."""
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
    plain = _plain(template)
    if not isinstance(plain, dict):
        raise TemplateError(f"a template is a mapping with Resources, got a {type(plain).__name__}")
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


def carried_parameters(
    template: Mapping[str, Any], previous: Mapping[str, str], changes: Mapping[str, str]
) -> dict[str, str]:
    """An update's parameters: the previous values of those the (new) template declares, then the changes."""
    declared = template.get("Parameters") or {}
    return {**{k: v for k, v in previous.items() if k in declared}, **changes}


def is_list_type(kind: str) -> bool:
    """Whether a parameter type's value is a list (CommaDelimitedList, List<...>)."""
    return kind in LIST_TYPES or kind.startswith("List<")


def resolve_parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """A template's parameter values (lists for list types): defaults plus given values, checked as CloudFormation
    checks them (AllowedValues, AllowedPattern, MinLength/MaxLength, MinValue/MaxValue, Number)."""
    declared = template.get("Parameters") or {}
    if not isinstance(declared, Mapping):
        raise TemplateError("Parameters must be a mapping")
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("Type"), str):
            raise TemplateError(f"parameter {name}: needs a Type")
        if name in given:
            text = str(given[name])
        elif "Default" in spec:
            default = spec["Default"]
            text = ",".join(str(d) for d in default) if isinstance(default, list) else str(default)
        else:
            raise TemplateError(f"parameter {name} needs a value (--param {name}=...)")
        kind = str(spec["Type"])
        members = [m.strip() for m in text.split(",")] if is_list_type(kind) else [text]
        for member in members:
            _check_parameter_value(name, spec, member)
        values[name] = members if is_list_type(kind) else text
    return values


def _check_parameter_value(name: str, spec: Mapping[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(str(pattern), value):
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise TemplateError(f"parameter {name}={value!r} is shorter than MinLength {spec['MinLength']}")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        raise TemplateError(f"parameter {name}={value!r} is longer than MaxLength {spec['MaxLength']}")
    if spec.get("Type") in ("Number", "List<Number>"):
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} must be a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value!r} is below MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value!r} is above MaxValue {spec['MaxValue']}")


def check_runnable(template: Any, parameters: Mapping[str, str]) -> None:
    """Refuse (TemplateError naming the place) what the runner cannot run, before anything starts: a
    template that is not a mapping, a Transform it cannot expand, an unsupported intrinsic, a reference
    to a name that does not exist, a custom resource without ServiceToken, bad parameter values."""
    if not isinstance(template, Mapping):
        raise TemplateError(f"a template is a mapping with Resources, got a {type(template).__name__}")
    transforms = template.get("Transform") or []
    names = []
    for transform in [transforms] if isinstance(transforms, str | Mapping) else transforms:
        name = transform.get("Name") if isinstance(transform, Mapping) else transform
        if name not in TRANSFORMS:
            raise TemplateError(f"Transform {name}: macros are not run offline (only {', '.join(TRANSFORMS)})")
        names.append(name)
    resources = template.get("Resources")
    if not isinstance(resources, Mapping) or not resources:
        raise TemplateError("expected a mapping of Resources")
    for name, resource in resources.items():
        if not isinstance(resource, Mapping) or not isinstance(resource.get("Type"), str):
            raise TemplateError(f"Resources.{name}: needs a Type")
    for key in ("Conditions", "Mappings", "Outputs"):
        if not isinstance(template.get(key) or {}, Mapping):
            raise TemplateError(f"{key} must be a mapping")
    resolve_parameters(template, parameters)
    checker = _ReferenceCheck(template, "AWS::LanguageExtensions" in names)
    for name, body in (template.get("Conditions") or {}).items():
        checker.walk(body, f"Conditions.{name}")
    for name, resource in resources.items():
        if not is_custom(resource):
            continue  # never created: its properties are not evaluated
        where = f"Resources.{name}"
        checker.condition(resource.get("Condition"), f"{where}.Condition")
        depends = resource.get("DependsOn") or []
        for other in [depends] if isinstance(depends, str) else depends:
            if other not in resources:
                raise TemplateError(f"{where}.DependsOn: unknown resource {other}")
        properties = resource.get("Properties") or {}
        if not isinstance(properties, Mapping) or "ServiceToken" not in properties:
            raise TemplateError(f"{where}: a custom resource needs Properties.ServiceToken")
        checker.walk(properties, f"{where}.Properties")
    for name, output in (template.get("Outputs") or {}).items():
        if not isinstance(output, Mapping) or "Value" not in output:
            raise TemplateError(f"Outputs.{name}: needs a Value")
        checker.condition(output.get("Condition"), f"Outputs.{name}.Condition")
        checker.walk(output["Value"], f"Outputs.{name}.Value")


class _ReferenceCheck:
    """Walks template values: every intrinsic supported, every name it references declared."""

    def __init__(self, template: Mapping[str, Any], language_extensions: bool) -> None:
        self.language_extensions = language_extensions
        self.parameters = set(template.get("Parameters") or {})
        self.resources = set(template.get("Resources") or {})
        self.conditions = set(template.get("Conditions") or {})
        self.mappings = dict(template.get("Mappings") or {})

    def condition(self, name: Any, where: str) -> None:
        if name is not None and name not in self.conditions:
            raise TemplateError(f"{where}: unknown condition {name}")

    def ref(self, name: Any, where: str) -> None:
        if not isinstance(name, str) or name not in {*self.parameters, *self.resources, *PSEUDO}:
            raise TemplateError(f"{where}: Ref to unknown name {name}")

    def walk(self, value: Any, where: str) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.walk(item, f"{where}[{index}]")
            return
        if not isinstance(value, Mapping):
            return
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                self.intrinsic(str(key), arg, f"{where}.{key}")
                return
        for key, item in value.items():
            self.walk(item, f"{where}.{key}")

    def intrinsic(self, key: str, arg: Any, where: str) -> None:
        if key not in SUPPORTED:
            raise TemplateError(f"{where}: {key} is not supported by the offline runner ({', '.join(SUPPORTED)})")
        if key in LANGUAGE_EXTENSIONS and not self.language_extensions:
            raise TemplateError(f"{where}: {key} needs 'Transform: AWS::LanguageExtensions', as in CloudFormation")
        if key == "Ref":
            self.ref(arg, where)
        elif key == "Condition":
            self.condition(arg, where)
        elif key == "Fn::GetAtt":
            logical = arg.partition(".")[0] if isinstance(arg, str) else (arg[0] if isinstance(arg, list) else None)
            if logical not in self.resources:
                raise TemplateError(f"{where}: Fn::GetAtt on unknown resource {logical}")
        elif key == "Fn::Sub":
            self.sub(arg, where)
        elif key == "Fn::If":
            if not isinstance(arg, list) or len(arg) != 3:
                raise TemplateError(f"{where}: Fn::If takes [condition, value if true, value if false]")
            self.condition(arg[0], where)
            self.walk(arg[1:], where)
        elif key == "Fn::FindInMap":
            if not isinstance(arg, list) or len(arg) != 3:
                raise TemplateError(f"{where}: Fn::FindInMap takes [map, top-level key, second-level key]")
            if isinstance(arg[0], str) and arg[0] not in self.mappings:
                raise TemplateError(f"{where}: unknown mapping {arg[0]}")
            if all(isinstance(part, str) for part in arg):
                # Literal keys can be looked up now, as CloudFormation's own template check does.
                mapping = self.mappings[arg[0]]
                top = mapping.get(arg[1]) if isinstance(mapping, Mapping) else None
                if not isinstance(top, Mapping) or arg[2] not in top:
                    raise TemplateError(f"{where}: mapping {arg[0]} has no {arg[1]}.{arg[2]}")
            self.walk(arg, where)
        else:
            self.walk(arg, where)

    def sub(self, arg: Any, where: str) -> None:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], Mapping):
            text, variables = arg[0], dict(arg[1])
            self.walk(variables, where)
        else:
            raise TemplateError(f"{where}: Fn::Sub takes a string or [string, variables]")
        for match in SUB_VARIABLE.finditer(text):
            name = match.group(1).strip()
            if name in variables:
                continue
            if "." in name and name.split(".", 1)[0] in self.resources:
                continue
            self.ref(name, where)


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
        *,
        physical: dict[str, str] | None = None,
        data: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.simulator = simulator
        self.template = load_template(template)
        self.resources: dict[str, Any] = dict(self.template.get("Resources") or {})
        self.given = dict(parameters or {})
        """The parameter values as given (text); ``parameters`` holds them resolved (lists for list types)."""
        self.parameters: dict[str, Any] = self.resolve_parameters(self.given)
        self.data: dict[str, dict[str, Any]] = {} if data is None else data
        """Each created custom resource's response Data (the stack's, shared with its runner): Fn::GetAtt."""
        self.physical: dict[str, str] = {} if physical is None else physical
        """Each created custom resource's PhysicalResourceId (the stack's, shared with its runner): Ref."""

    # -- parameters and conditions -----------------------------------------------------------------

    def resolve_parameters(self, given: Mapping[str, str]) -> dict[str, Any]:
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
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": lambda a: base64.b64encode(str(self.resolve(a)).encode()).decode(),
            "Fn::Length": lambda a: len(self.resolve(a)),
        }
        if key not in handlers:
            raise TemplateError(f"{key} is not supported by the offline runner")
        return handlers[key](arg)

    def _find_in_map(self, arg: Any) -> Any:
        name, top, second = (str(self.resolve(a)) for a in arg)
        try:
            return self.template["Mappings"][name][top][second]
        except (KeyError, TypeError):
            raise TemplateError(f"Fn::FindInMap: {name} has no {top}.{second}") from None

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
