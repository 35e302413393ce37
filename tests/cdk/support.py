"""Scenario stacks shared by the CDK tests, and helpers to read what they synthesize to."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider

CLI_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
}
"""What ``cdk synth`` sets: templates then carry aws:cdk:path metadata and CDKMetadata, as deployed ones do."""

PLAIN_ID = "backup-aaaaaaaaaaa"
"""11 characters after the prefix: the shortest id the pattern allows."""
DELETE_ID = "backup-B2345672345"
KEEP_ID = "backup-cccccccccccccccc"
"""16 characters after the prefix: the longest id the pattern allows."""


@dataclass
class Main:
    """Three RestoredBackups in one stack, one per combination of options worth telling apart."""

    stack: Stack
    plain: RestoredBackup
    """Defaults: Retain, NeverExpires unmanaged, the stack's region, 60 minutes."""
    delete: RestoredBackup
    """RemovalPolicy.DESTROY (OnDelete Delete), never_expires=True, region eu-west-1, 5 minutes."""
    keep: RestoredBackup
    """never_expires=False, 1 second (the shortest timeout)."""


@dataclass
class Vpcs:
    """Providers placed in VPCs: one with CDK's defaults, one with explicit subnets and security group."""

    default_stack: Stack
    default_vpc: ec2.Vpc
    default_backup: RestoredBackup
    explicit_stack: Stack
    explicit_vpc: ec2.Vpc
    security_group: ec2.SecurityGroup
    explicit_backups: tuple[RestoredBackup, RestoredBackup]


@dataclass
class Tokens:
    """backup_id and region from CfnParameters: validation must let tokens through."""

    stack: Stack
    backup_id: CfnParameter
    region: CfnParameter
    backup: RestoredBackup


@dataclass
class Synthesized:
    """An app with every scenario stack, synthesized once."""

    app: App
    outdir: Path
    main: Main
    vpcs: Vpcs
    tokens: Tokens

    def template(self, stack: Stack) -> Template:
        """The assertions view of one stack's template."""
        return Template.from_stack(stack)

    def json(self, stack: Stack) -> dict[str, Any]:
        """One stack's template as plain JSON."""
        return dict(Template.from_stack(stack).to_json())


def build_main(app: App) -> Main:
    """The plain stack: three RestoredBackups, no VPC."""
    stack = Stack(app, "Main")
    return Main(
        stack=stack,
        plain=RestoredBackup(stack, "Plain", backup_id=PLAIN_ID),
        delete=RestoredBackup(
            stack,
            "Delete",
            backup_id=DELETE_ID,
            removal_policy=RemovalPolicy.DESTROY,
            never_expires=True,
            region="eu-west-1",
            service_timeout=Duration.minutes(5),
        ),
        keep=RestoredBackup(stack, "Keep", backup_id=KEEP_ID, never_expires=False, service_timeout=Duration.seconds(1)),
    )


def _vpc(stack: Stack, **options: Any) -> ec2.Vpc:
    # A flow log, so that cdk-nag's VPC rule (not this project's business) stays quiet.
    return ec2.Vpc(stack, "Vpc", max_azs=2, flow_logs={"FlowLog": ec2.FlowLogOptions()}, **options)


def build_vpcs(app: App) -> Vpcs:
    """Two VPC stacks: CDK's default placement, and isolated subnets with a given security group."""
    default_stack = Stack(app, "InVpc")
    default_vpc = _vpc(default_stack, nat_gateways=1)
    default_provider = RestoreProvider(default_stack, "Provider", vpc=default_vpc)
    default_backup = RestoredBackup(default_stack, "Backup", backup_id=PLAIN_ID, provider=default_provider)

    explicit_stack = Stack(app, "InVpcExplicit")
    explicit_vpc = _vpc(
        explicit_stack,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
        ],
    )
    security_group = ec2.SecurityGroup(
        explicit_stack, "ProviderSecurityGroup", vpc=explicit_vpc, description="Provider egress to VPC endpoints"
    )
    provider = RestoreProvider(
        explicit_stack,
        "Provider",
        vpc=explicit_vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        security_groups=[security_group],
    )
    explicit_backups = (
        RestoredBackup(explicit_stack, "First", backup_id=PLAIN_ID, provider=provider),
        RestoredBackup(explicit_stack, "Second", backup_id=KEEP_ID, provider=provider),
    )
    return Vpcs(
        default_stack=default_stack,
        default_vpc=default_vpc,
        default_backup=default_backup,
        explicit_stack=explicit_stack,
        explicit_vpc=explicit_vpc,
        security_group=security_group,
        explicit_backups=explicit_backups,
    )


def build_tokens(app: App) -> Tokens:
    """A stack whose backup id and region are parameters."""
    stack = Stack(app, "Tokens")
    backup_id = CfnParameter(stack, "BackupId", allowed_pattern="backup-[2-7a-zA-Z]{11,16}")
    region = CfnParameter(stack, "BackupRegion")
    backup = RestoredBackup(stack, "Backup", backup_id=backup_id.value_as_string, region=region.value_as_string)
    return Tokens(stack=stack, backup_id=backup_id, region=region, backup=backup)


def synthesize_scenarios(outdir: Path) -> Synthesized:
    """Build every scenario into one app and synthesize it into ``outdir``."""
    app = App(outdir=str(outdir), context=CLI_CONTEXT)
    synthesized = Synthesized(
        app=app, outdir=outdir, main=build_main(app), vpcs=build_vpcs(app), tokens=build_tokens(app)
    )
    app.synth()
    return synthesized


def logical_id(stack: Stack, construct: Any) -> str:
    """The logical id of a construct's CloudFormation resource (an L2's default child, or the L1 itself)."""
    resource = construct.node.default_child if construct.node.default_child is not None else construct
    resolved = stack.resolve(stack.get_logical_id(resource))
    assert isinstance(resolved, str)
    return resolved


def render(value: Any) -> Any:
    """A CloudFormation value as text: Ref X -> ${X}, GetAtt [X, A] -> ${X.A}, Fn::Join and Fn::Sub flattened."""
    if isinstance(value, Mapping):
        if set(value) == {"Ref"}:
            return "${" + str(value["Ref"]) + "}"
        if set(value) == {"Fn::GetAtt"}:
            return "${" + ".".join(value["Fn::GetAtt"]) + "}"
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(render(part)) for part in parts)
        if set(value) == {"Fn::Sub"}:
            text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            for name, variable in variables.items():
                text = text.replace("${" + name + "}", str(render(variable)))
            return text
        return {key: render(item) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item) for item in value]
    return value


def as_list(value: Any) -> list[Any]:
    """A policy field that may be one value or a list."""
    return value if isinstance(value, list) else [value]


def resources(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one Type, by logical id."""
    return {name: body for name, body in template.get("Resources", {}).items() if body["Type"] == kind}


def statements(template: Mapping[str, Any], logical: str) -> list[dict[str, Any]]:
    """The rendered statements of one AWS::IAM::Policy."""
    document = template["Resources"][logical]["Properties"]["PolicyDocument"]
    return [render(statement) for statement in document["Statement"]]


def all_statements(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every rendered statement of every policy in the template: roles' inline ones, AWS::IAM::Policy and
    AWS::IAM::ManagedPolicy."""
    found: list[dict[str, Any]] = []
    for body in resources(template, "AWS::IAM::Role").values():
        for policy in body["Properties"].get("Policies", []):
            found += [render(statement) for statement in policy["PolicyDocument"]["Statement"]]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name in resources(template, kind):
            found += statements(template, name)
    return found


def cdk_init_project(tmp_path: Path, source: str, context: Mapping[str, Any]) -> Path:
    """A project as ``cdk init app --language python`` lays it out: cdk.json (``context``: its flags) and app.py."""
    project = tmp_path / "project"
    project.mkdir()
    settings = {"app": f"{sys.executable} app.py", "context": dict(context)}
    (project / "cdk.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    (project / "app.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return project


NO_AWS_CREDENTIALS: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
"""Environment for a CLI run on a machine with no AWS credentials at all (None removes a variable)."""


CDK_CLI = Path(__file__).resolve().parents[2] / ".node-cdk" / "node_modules" / ".bin" / "cdk"
"""The CDK CLI ``make tools`` installs (pinned in the Makefile)."""


def cdk_cli_command() -> list[str]:
    """The CDK CLI: ``make tools``'s, else npm's cache (``npx --offline``); skips the test when neither has it."""
    if CDK_CLI.exists():
        return [str(CDK_CLI)]
    if shutil.which("npx") is None:
        pytest.skip("npx is not installed")
    command = ["npx", "--offline", "--yes", "aws-cdk"]
    probe = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False, timeout=120)
    if probe.returncode != 0:
        pytest.skip("the aws-cdk CLI is not installed (make tools) nor in npm's cache")
    return command


def cdk_cli(
    project: Path, *arguments: str, env: Mapping[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CDK CLI (``cdk_cli_command``) with ``arguments`` in ``project``, the virtualenv's python3 first on PATH,
    ``env`` over the environment."""
    overrides = env or {}
    env = {
        key: value
        for key, value in {**os.environ, **overrides}.items()
        if key not in ("PYTHONPATH", "CDK_CONTEXT_JSON") and value is not None
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = cdk_cli_command()
    return subprocess.run(
        [*command, *arguments],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
