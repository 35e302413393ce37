"""The app shapes of the done-when matrix (env x VPC x Stage x NestedStack x count) and the IAM quota arithmetic."""

from __future__ import annotations

import json
import string
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk
from aws_cdk import App, Environment, NestedStack, RemovalPolicy, Stack, Stage
from aws_cdk import aws_ec2 as ec2
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider
from cloudhsm_backup_restore_cdk.grants import (
    LONGEST_REGION,
    MANAGED_POLICIES_PER_ROLE,
    MANAGED_POLICY_CHARACTERS,
    ROLE_INLINE_CHARACTERS,
)

from tests.cdk.support import CLI_CONTEXT, resources

ACCOUNT = "111122223333"
EXPLICIT = Environment(account=ACCOUNT, region="eu-west-1")
ENVS: dict[str, Environment | None] = {"agnostic": None, "explicit": EXPLICIT}
CONTAINERS = ("stack", "stage", "nested")


def recommended_flags() -> dict[str, Any]:
    """The feature flags ``cdk init`` writes (aws-cdk-lib's recommended-feature-flags.json, read from the package)."""
    bundle = next((Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz"))
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        flags: dict[str, Any] = json.load(member)
    return flags


def backup_id(number: int) -> str:
    """A valid backup id for ``number`` (11 letters after the prefix)."""
    letters = ""
    for _ in range(11):
        number, digit = divmod(number, 26)
        letters += string.ascii_lowercase[digit]
    return "backup-" + letters


@dataclass
class Shape:
    """One cell of the matrix: where the backups live and how many there are."""

    env: str
    vpc: bool
    container: str
    count: int

    @property
    def name(self) -> str:
        """A stack-name-safe id for the shape."""
        return f"{self.env.capitalize()}{'Vpc' if self.vpc else ''}{self.container.capitalize()}{self.count}"


def build(app: App, shape: Shape) -> Stack:
    """Add ``shape`` to ``app``; returns the stack holding the backups (a NestedStack for "nested")."""
    env = ENVS[shape.env]
    if shape.container == "stage":
        holder = Stack(Stage(app, shape.name + "Stage", env=env), shape.name)
    elif shape.container == "nested":
        holder = NestedStack(Stack(app, shape.name, env=env), "Nested")
    else:
        holder = Stack(app, shape.name, env=env)
    provider = None
    if shape.vpc:
        # The user's VPC, not under test: flow logs keep cdk-nag's VPC rule quiet, and the default security group
        # is left alone (aws-cdk-lib's own custom resource for restrictDefaultSecurityGroup has a cfn-lint W3005).
        vpc = ec2.Vpc(
            holder,
            "Vpc",
            max_azs=2,
            nat_gateways=1,
            flow_logs={"FlowLog": ec2.FlowLogOptions()},
            restrict_default_security_group=False,
        )
        provider = RestoreProvider(holder, "Provider", vpc=vpc)
    for number in range(shape.count):
        RestoredBackup(
            holder,
            f"Backup{number}",
            backup_id=backup_id(number),
            removal_policy=RemovalPolicy.DESTROY if number % 2 else RemovalPolicy.RETAIN,
            never_expires=True if number % 3 == 0 else None,
            provider=provider,
        )
    return holder


def new_app(outdir: Path, *, flags: bool) -> App:
    """An app as ``cdk synth`` runs it, optionally with every flag ``cdk init`` writes (partition literals too)."""
    context = {**CLI_CONTEXT, **(recommended_flags() if flags else {})}
    return App(outdir=str(outdir), context=context)


def templates(outdir: Path) -> list[Path]:
    """Every template in a cloud assembly: stacks, stages' stacks and nested stacks."""
    return sorted(outdir.rglob("*.template.json"))


# --- IAM quota arithmetic on the synthesized template -------------------------------------------------------

WORST_PSEUDO = {
    "AWS::Partition": "aws-us-gov",
    "AWS::Region": "r" * LONGEST_REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": "arn:aws-us-gov:cloudformation:rrrrrrrrrrrrrrrr:111122223333:stack/"
    + "s" * 128
    + "/0123abcd-0123-4567-89ab-0123456789ab",
    "AWS::StackName": "s" * 128,
}
"""The longest value each pseudo parameter can take (a 128-character stack name, the longest partition)."""
UNKNOWN = "u" * 256
"""Stand-in for a GetAtt or parameter value: longer than any name or ARN those resolve to in these policies."""


def evaluate(value: Any, parameters: Mapping[str, str]) -> Any:
    """A CloudFormation value with every intrinsic evaluated at its longest."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return WORST_PSEUDO.get(argument, parameters.get(argument, UNKNOWN))
        if function == "Fn::GetAtt":
            return UNKNOWN
        if function == "Fn::Join":
            return str(argument[0]).join(str(evaluate(item, parameters)) for item in argument[1])
        if function == "Fn::Split":
            return str(evaluate(argument[1], parameters)).split(argument[0])
        if function == "Fn::Select":
            return evaluate(argument[1], parameters)[int(argument[0])]
    if isinstance(value, dict):
        return {key: evaluate(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [evaluate(item, parameters) for item in value]
    return value


def worst_parameters(template: Mapping[str, Any]) -> dict[str, str]:
    """Each parameter at its longest: the backup id pattern's 23 characters, a region, or UNKNOWN."""
    found: dict[str, str] = {}
    for name, parameter in template.get("Parameters", {}).items():
        pattern = parameter.get("AllowedPattern", "")
        found[name] = "backup-" + "b" * 16 if pattern.startswith("backup-") else UNKNOWN
        if "Region" in name:
            found[name] = "r" * LONGEST_REGION
    return found


def policy_size(document: Any, parameters: Mapping[str, str]) -> int:
    """Characters IAM counts for a policy document (whitespace excluded) once CloudFormation resolves it."""
    rendered = json.dumps(evaluate(document, parameters), separators=(",", ":"))
    return sum(1 for character in rendered if not character.isspace())


@dataclass
class RoleQuota:
    """What one role holds, measured against IAM's quotas."""

    role: str
    inline_characters: int
    managed_policies: int
    largest_managed_policy: int

    def problems(self) -> list[str]:
        """Every quota this role exceeds."""
        found = []
        if self.inline_characters > ROLE_INLINE_CHARACTERS:
            found.append(f"{self.role}: inline policies {self.inline_characters} > {ROLE_INLINE_CHARACTERS}")
        if self.managed_policies > MANAGED_POLICIES_PER_ROLE:
            found.append(f"{self.role}: {self.managed_policies} managed policies > {MANAGED_POLICIES_PER_ROLE}")
        if self.largest_managed_policy > MANAGED_POLICY_CHARACTERS:
            found.append(f"{self.role}: managed policy {self.largest_managed_policy} > {MANAGED_POLICY_CHARACTERS}")
        return found


def role_quotas(template: Mapping[str, Any]) -> Iterator[RoleQuota]:
    """Inline size, attached count and largest managed policy of every role in ``template``."""
    parameters = worst_parameters(template)
    for role, body in resources(template, "AWS::IAM::Role").items():
        ref = {"Ref": role}
        inline = sum(policy_size(p["PolicyDocument"], parameters) for p in body["Properties"].get("Policies", []))
        inline += sum(
            policy_size(policy["Properties"]["PolicyDocument"], parameters)
            for policy in resources(template, "AWS::IAM::Policy").values()
            if ref in policy["Properties"].get("Roles", [])
        )
        managed = [
            policy_size(policy["Properties"]["PolicyDocument"], parameters)
            for policy in resources(template, "AWS::IAM::ManagedPolicy").values()
            if ref in policy["Properties"].get("Roles", [])
        ]
        arns = body["Properties"].get("ManagedPolicyArns", [])
        yield RoleQuota(role, inline, len(managed) + len(arns), max(managed, default=0))
