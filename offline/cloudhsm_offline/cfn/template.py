"""A CloudFormation template as the offline runner sees it: parameters, conditions and intrinsics.

Only what a custom-resource consumer template needs is evaluated: parameters (String, Number,
CommaDelimitedList and List<...> as lists; defaults, AllowedValues, AllowedPattern, lengths and
values), pseudo parameters, Mappings, Conditions, and the intrinsics ``TemplateResolver`` walks
itself or finds in ``EVALUATE``. Resources that are not custom resources are not created and their
properties are never evaluated: Ref gives ``offline-<LogicalId>``, Fn::GetAtt
``offline-<LogicalId>.<Attribute>``, and a Lambda function's Ref and Arn give the provider
function's. Fn::ImportValue of any name gives the provider's ServiceToken.
``check_runnable`` refuses, before anything starts, every construct and reference this cannot run.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cfnlint.decode import decode, decode_str

from cloudhsm_offline import partition_of
from cloudhsm_offline.cfn.simulator import CloudFormationSimulator

CUSTOM_TYPES = ("AWS::CloudFormation::CustomResource",)
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
UNKNOWN = object()
"""While checking: a value only a running stack knows (a pseudo parameter, a custom resource's id or attribute)."""
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
        listed = spec["Type"] in LIST_TYPES or spec["Type"].startswith("List<")
        members = [m.strip() for m in text.split(",")] if listed else [text]
        for member in members:
            _check_parameter_value(name, spec, member)
        values[name] = members if listed else text
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


def check_runnable(template: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
    """Refuse (TemplateError naming the place) what the runner cannot run, before anything starts: a
    Transform it cannot expand, an unsupported intrinsic, a reference to a name that does not exist,
    a custom resource without ServiceToken, bad parameter values (``load_template`` refuses a
    template that is not a mapping)."""
    for name in _transforms(template):
        if name not in TRANSFORMS:
            raise TemplateError(f"Transform {name}: macros are not run offline (only {', '.join(TRANSFORMS)})")
    resources = template.get("Resources")
    if not isinstance(resources, Mapping) or not resources:
        raise TemplateError("Resources: needs at least one resource, a mapping of logical ids to resources")
    for name, resource in resources.items():
        if not isinstance(resource, Mapping) or not isinstance(resource.get("Type"), str):
            raise TemplateError(f"Resources.{name}: needs a Type")
    for key in ("Conditions", "Mappings", "Outputs"):
        if not isinstance(template.get(key) or {}, Mapping):
            raise TemplateError(f"{key} must be a mapping")
    TemplateResolver(None, template, parameters).check()


def _transforms(template: Mapping[str, Any]) -> list[Any]:
    transforms = template.get("Transform") or []
    items = [transforms] if isinstance(transforms, str | Mapping) else transforms
    return [item.get("Name") if isinstance(item, Mapping) else item for item in items]


def is_custom(resource: Mapping[str, Any]) -> bool:
    """Whether a resource is a custom resource."""
    kind = str(resource.get("Type", ""))
    return kind.startswith("Custom::") or kind in CUSTOM_TYPES


def _unknown(value: Any) -> bool:
    """Whether a resolved value still holds something only a running stack knows (see ``UNKNOWN``)."""
    if isinstance(value, list):
        return any(_unknown(v) for v in value)
    if isinstance(value, dict):
        return any(_unknown(v) for v in value.values())
    return value is UNKNOWN


EVALUATE: dict[str, Callable[[Any], Any]] = {
    "Fn::Join": lambda a: str(a[0]).join(str(x) for x in a[1]),
    "Fn::Select": lambda a: a[1][int(a[0])],
    "Fn::Split": lambda a: str(a[1]).split(str(a[0])),
    "Fn::Equals": lambda a: str(a[0]) == str(a[1]),
    "Fn::Not": lambda a: not a[0],
    "Fn::And": all,
    "Fn::Or": any,
    "Fn::Base64": lambda a: base64.b64encode(str(a).encode()).decode(),
    "Fn::Length": len,
    "Fn::ToJsonString": lambda a: json.dumps(a, separators=(",", ":")),
}
"""The intrinsics that are a plain function of their resolved arguments."""


class TemplateResolver:
    """A template's parameters, conditions and intrinsics, resolved against a simulated stack.

    Without a simulator it *checks* instead (``check``): the same walk visits every branch, resolves what
    the parameters decide and leaves ``UNKNOWN`` what only a running stack knows (pseudo parameters,
    custom resources' ids and attributes); a TemplateError then names the place in the template.
    """

    def __init__(
        self,
        simulator: CloudFormationSimulator | None,
        template: str | Path | Mapping[str, Any],
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.simulator = simulator
        self.checking = simulator is None
        self.template = load_template(template)
        self.resources: dict[str, Any] = dict(self.template.get("Resources") or {})
        self.language_extensions = "AWS::LanguageExtensions" in _transforms(self.template)
        self.given = dict(parameters or {})
        """The parameter values as given (text); ``parameters`` holds them resolved (lists for list types)."""
        self.parameters: dict[str, Any] = resolve_parameters(self.template, self.given)
        self.referenced: set[str] = set()
        """The resources a Ref, Fn::GetAtt or Fn::Sub resolved so far named (what a resource depends on)."""

    def references(self, value: Any) -> set[str]:
        """The resources ``value`` refers to through Ref, Fn::GetAtt or Fn::Sub, in every branch."""
        checker = TemplateResolver(None, self.template, self.given)
        checker.resolve(value)
        return checker.referenced

    def check(self) -> None:
        """Walk every Condition, every custom resource's Properties and every Output (what a stack evaluates)."""
        for name, body in (self.template.get("Conditions") or {}).items():
            self.resolve(body, f"Conditions.{name}")
        for name, resource in self.resources.items():
            if not is_custom(resource):
                continue  # never created: its properties are not evaluated
            where = f"Resources.{name}"
            if resource.get("Condition") is not None:
                self.condition(resource["Condition"], f"{where}.Condition")
            depends = resource.get("DependsOn") or []
            for other in [depends] if isinstance(depends, str) else depends:
                if other not in self.resources:
                    raise TemplateError(f"{where}.DependsOn: unknown resource {other}")
            properties = resource.get("Properties") or {}
            if not isinstance(properties, Mapping) or "ServiceToken" not in properties:
                raise TemplateError(f"{where}: a custom resource needs Properties.ServiceToken")
            self.resolve(properties, f"{where}.Properties")
        for name, output in (self.template.get("Outputs") or {}).items():
            if not isinstance(output, Mapping) or "Value" not in output:
                raise TemplateError(f"Outputs.{name}: needs a Value")
            if output.get("Condition") is not None:
                self.condition(output["Condition"], f"Outputs.{name}.Condition")
            self.resolve(output["Value"], f"Outputs.{name}.Value")

    def _error(self, where: str, message: str) -> TemplateError:
        """A refusal; while checking it names the place in the template."""
        return TemplateError(f"{where}: {message}" if self.checking else message)

    # -- parameters and conditions -----------------------------------------------------------------

    def pseudo(self, name: str) -> Any:
        """A pseudo parameter of the simulated stack (``UNKNOWN`` when checking)."""
        sim = self.simulator
        if sim is None:
            return UNKNOWN
        return {
            "AWS::Region": sim.region,
            "AWS::AccountId": sim.account,
            "AWS::StackName": sim.stack_name,
            "AWS::StackId": sim.stack_id,
            "AWS::Partition": partition_of(sim.region),
            "AWS::URLSuffix": "amazonaws.com.cn" if sim.region.startswith("cn-") else "amazonaws.com",
            "AWS::NotificationARNs": "",
        }[name]

    def condition(self, name: Any, where: str = "") -> Any:
        """Evaluate a named condition (``UNKNOWN`` when checking and it depends on the running stack)."""
        conditions = self.template.get("Conditions") or {}
        if not isinstance(name, str) or name not in conditions:
            raise self._error(where, f"unknown condition {name}")
        value = self.resolve(conditions[name], f"Conditions.{name}")
        return UNKNOWN if value is UNKNOWN else bool(value)

    # -- intrinsics --------------------------------------------------------------------------------

    def resolve(self, value: Any, where: str = "") -> Any:
        """Resolve intrinsics in a value; ``NO_VALUE`` entries are dropped."""
        if isinstance(value, list):
            items = (self.resolve(item, f"{where}[{index}]") for index, item in enumerate(value))
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._intrinsic(str(key), arg, f"{where}.{key}")
        resolved = {k: self.resolve(v, f"{where}.{k}") for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _intrinsic(self, key: str, arg: Any, where: str) -> Any:
        special: dict[str, Callable[[Any, str], Any]] = {
            "Ref": self._ref,
            "Condition": self.condition,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::FindInMap": self._find_in_map,
            "Fn::ImportValue": self._import_value,
        }
        if key not in special and key not in EVALUATE:
            supported = ", ".join([*special, *EVALUATE])
            raise self._error(where, f"{key} is not supported by the offline runner ({supported})")
        if key in LANGUAGE_EXTENSIONS and not self.language_extensions:
            raise self._error(where, f"{key} needs 'Transform: AWS::LanguageExtensions', as in CloudFormation")
        if key in special:
            return special[key](arg, where)
        args = self.resolve(arg, where)
        if _unknown(args):
            return UNKNOWN
        try:
            return EVALUATE[key](args)
        except (KeyError, IndexError, TypeError, ValueError):
            if self.checking:  # it may fail for values of this run, or sit in a branch never taken
                return UNKNOWN
            raise

    def _import_value(self, arg: Any, where: str) -> Any:
        self.resolve(arg, where)
        return UNKNOWN if self.simulator is None else self.simulator.service_token

    def _if(self, arg: Any, where: str) -> Any:
        if not isinstance(arg, list) or len(arg) != 3:
            raise self._error(where, "Fn::If takes [condition, value if true, value if false]")
        chosen = self.condition(arg[0], where)
        if not self.checking:
            return self.resolve(arg[1] if chosen else arg[2], where)
        branches = [self.resolve(arg[1], f"{where}[1]"), self.resolve(arg[2], f"{where}[2]")]
        return UNKNOWN if chosen is UNKNOWN else branches[0 if chosen else 1]

    def _find_in_map(self, arg: Any, where: str) -> Any:
        if isinstance(arg, list) and len(arg) == 4:  # AWS::LanguageExtensions' [map, key, key, {DefaultValue: v}]
            raise self._error(where, "Fn::FindInMap's fourth argument (DefaultValue) is not supported offline")
        if not isinstance(arg, list) or len(arg) != 3:
            raise self._error(where, "Fn::FindInMap takes [map, top-level key, second-level key]")
        mappings = self.template.get("Mappings") or {}
        if isinstance(arg[0], str) and arg[0] not in mappings:
            raise self._error(where, f"unknown mapping {arg[0]}")
        keys = self.resolve(arg, where)
        if _unknown(keys):
            return UNKNOWN
        name, top, second = (str(key) for key in keys)
        try:
            return mappings[name][top][second]
        except (KeyError, TypeError):
            if self.checking and not all(isinstance(part, str) for part in arg):
                return UNKNOWN  # keys from this run's values: CloudFormation too finds out only when it runs
            raise self._error(where, f"mapping {name} has no {top}.{second}") from None

    def _ref(self, name: Any, where: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if isinstance(name, str) and name in self.parameters:
            return self.parameters[name]
        if name in PSEUDO:
            return self.pseudo(name)
        if isinstance(name, str) and name in self.resources:
            self.referenced.add(name)
            if is_custom(self.resources[name]):
                if self.simulator is None:
                    return UNKNOWN
                if name not in self.simulator.resources:
                    raise TemplateError(f"Ref {name}: the resource has no physical id yet")
                return self.simulator.resources[name].physical_id
            if self.resources[name].get("Type") in FUNCTION_TYPES:
                return UNKNOWN if self.simulator is None else self.simulator.function.function_name
            return f"offline-{name}"
        raise self._error(where, f"Ref to unknown name {name}")

    def _get_att(self, arg: Any, where: str) -> Any:
        if isinstance(arg, str):
            logical, _, attribute = arg.partition(".")
        elif isinstance(arg, list) and len(arg) == 2:
            logical, attribute = str(arg[0]), self.resolve(arg[1], where)
        else:
            raise self._error(where, "Fn::GetAtt takes LogicalId.Attribute or [LogicalId, Attribute]")
        resource = self.resources.get(logical)
        if resource is None:
            raise self._error(where, f"Fn::GetAtt on unknown resource {logical}")
        self.referenced.add(logical)
        if resource.get("Type") in FUNCTION_TYPES and attribute == "Arn":
            return UNKNOWN if self.simulator is None else self.simulator.function.arn
        if not is_custom(resource):
            return f"offline-{logical}.{attribute}"
        if self.simulator is None:
            return UNKNOWN
        state = self.simulator.resources.get(logical)
        if state is None:
            raise TemplateError(f"Fn::GetAtt {logical}.{attribute}: {logical} was not created")
        if attribute not in state.data:
            raise TemplateError(
                f"CustomResource attribute error: Vendor response doesn't contain {attribute} key in object "
                f"{self.simulator.stack_id}|{logical}|{state.physical_id}"
            )
        return state.data[attribute]

    def _sub(self, arg: Any, where: str) -> Any:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], Mapping):
            text, variables = arg[0], self.resolve(arg[1], where)
        else:
            raise self._error(where, "Fn::Sub takes a string or [string, variables]")
        unknown = False

        def replace(match: re.Match[str]) -> str:
            nonlocal unknown
            name = match.group(1).strip()
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] in self.resources:
                value = self._get_att(name, where)
            else:
                value = self._ref(name, where)
            unknown = unknown or value is UNKNOWN
            return str(value)

        substituted = SUB_VARIABLE.sub(replace, text).replace("${!", "${")
        return UNKNOWN if unknown else substituted
