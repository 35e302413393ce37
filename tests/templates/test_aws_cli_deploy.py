"""The README's pipeline path with the real AWS CLI v1 (PyPI awscli) against a local moto server on loopback.

`make package` (the packaging CLI it runs), the upload and `aws cloudformation deploy` of the provider stack are
the README's quick-start commands, run as written by bash. moto cannot run the Lambda (the offline world does):
this proves the template deploys with the documented flags and that the function it creates has the code at
the key the packaged template names, the contract's runtime, handler and sizing, its provider id and its role.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudhsm_backup_restore_pipeline import contract

from tests.templates import readme
from tests.templates.cfn import ROOT
from tests.templates.tools import tool

REGION = "eu-west-1"
"""A region no other test's moto state uses (moto's backends are per process, shared by its servers)."""
STACK = "cloudhsm-backup-restore-provider"


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] cannot be installed here")
    from moto.cloudformation import models

    # moto 5.2.5 gives a stack created by a change set an empty template_dict and evaluates its Outputs before
    # any resource exists, never again after ExecuteChangeSet (models.ChangeSet.apply), so a stack made by
    # `aws cloudformation deploy` shows no Outputs. CloudFormation shows them once the stack is complete.
    apply = models.ChangeSet.apply

    def apply_then_outputs(change_set: Any) -> None:
        apply(change_set)
        change_set.stack.template_dict = change_set.template_dict
        change_set.stack.output_map = change_set.stack._create_output_map()

    monkeypatch.setattr(models.ChangeSet, "apply", apply_then_outputs)
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    """Only loopback: AWS_ENDPOINT_URL (every client, `cloudformation package`'s S3 one too), no profile files."""
    aws = tool(".venv-awscli", "aws")
    return {
        "PATH": f"{aws.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": os.pathsep.join(str(ROOT / folder) for folder in ("pipeline", "handler")),
    }


def run(command: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result.stdout


def aws_json(arguments: str, cwd: Path, env: dict[str, str]) -> Any:
    return json.loads(run(f"aws {arguments} --output json", cwd, env))


@pytest.mark.slow
def test_readme_pipeline_deploys_the_provider_with_the_real_aws_cli(tmp_path: Path, moto_endpoint: str) -> None:
    env = aws_env(tmp_path, moto_endpoint)
    version = run("aws --version 2>&1", tmp_path, env)
    assert version.startswith("aws-cli/1."), version
    commands = readme.pipeline_commands()
    assert commands[0] == "make package"
    # What `make package` runs, into ./dist of a scratch folder (the checkout's dist/ is left alone).
    script = [f"{sys.executable} -m cloudhsm_backup_restore_pipeline --dist dist", *commands[1:]]
    bucket = next(c.split("=", 1)[1] for c in commands if c.startswith("BUCKET="))
    run(f"aws s3 mb s3://{bucket}", tmp_path, env)
    run("\n".join(script), tmp_path, env)

    zip_bytes = (tmp_path / "dist" / "cloudhsm-backup-restore-lambda.zip").read_bytes()
    sha = hashlib.sha256(zip_bytes).hexdigest()
    [stack] = aws_json(f"cloudformation describe-stacks --stack-name {STACK}", tmp_path, env)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["S3Bucket"] == bucket
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert {o["OutputKey"]: o.get("ExportName") for o in stack["Outputs"]}["ServiceToken"] == f"{STACK}-ServiceToken"

    function = aws_json(f"lambda get-function --function-name {outputs['FunctionName']}", tmp_path, env)
    configuration = function["Configuration"]
    assert configuration["FunctionArn"] == outputs["ServiceToken"]
    # The code is the object at the content-addressed key the packaged template names.
    assert configuration["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert configuration["CodeSize"] == len(zip_bytes)
    head = aws_json(f"s3api head-object --bucket {bucket} --key cloudhsm-backup-restore/{sha}.zip", tmp_path, env)
    assert head["ContentLength"] == len(zip_bytes)
    assert configuration["Runtime"] == contract.RUNTIME
    assert configuration["Handler"] == contract.HANDLER
    assert (configuration["MemorySize"], configuration["Timeout"]) == (
        contract.MEMORY_MB,
        contract.LAMBDA_TIMEOUT_SECONDS,
    )
    provider_id = stack["StackId"].split("/")[2].split("-")[4]
    assert configuration["Environment"]["Variables"] == {contract.PROVIDER_ID_ENV: provider_id}
    assert configuration["Role"] == outputs["RoleArn"]
    # moto's AWS::Lambda::Function keeps only Code, Handler, Role, Runtime, MemorySize, Timeout, Environment,
    # VpcConfig, ReservedConcurrentExecutions (awslambda/models.py): Architectures, TracingConfig and
    # DeadLetterConfig are checked in the template by test_contract.py. The queue itself was created:
    assert outputs["DeadLetterQueueArn"].startswith(f"arn:aws:sqs:{REGION}:")

    role_name = outputs["RoleArn"].rsplit("/", 1)[1]
    policies = aws_json(f"iam list-role-policies --role-name {role_name}", tmp_path, env)["PolicyNames"]
    assert "cloudhsm-backups" in policies
    backups = aws_json(f"iam get-role-policy --role-name {role_name} --policy-name cloudhsm-backups", tmp_path, env)
    document = backups["PolicyDocument"]
    if isinstance(document, str):  # moto 5.2.5 keeps a CloudFormation inline policy as the repr of a dict
        document = ast.literal_eval(document)
    [restore] = [s for s in document["Statement"] if "cloudhsm:RestoreBackup" in s["Action"]]
    backup_arns = next(c.split("=", 1)[1] for c in commands if c.startswith("BACKUP_ARNS="))
    # BackupArns from the README reached the grant: not every backup in the account and region.
    assert restore["Resource"] in (backup_arns, backup_arns.split(","))


def test_make_package_prints_the_readme_deploy_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cloudhsm_backup_restore_pipeline", "--dist", "dist"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    hint = result.stdout.split("Deploy (", 1)[1].split("\n", 1)[1]
    printed = readme.commands(hint)
    documented = readme.pipeline_commands()
    deploy = [c for c in documented if c.startswith("aws cloudformation deploy")]
    assert deploy == [c for c in printed if c.startswith("aws cloudformation deploy")]
    assert "--no-fail-on-empty-changeset" in deploy[0]
    assert 'BackupArns="$BACKUP_ARNS"' in deploy[0]
    [upload] = [c for c in documented if c.startswith("aws s3 cp")]
    key = next(c for c in printed if c.startswith("aws s3 cp")).split("$BUCKET/", 1)[1].rstrip('"')
    assert upload.replace("$KEY", key) == next(c for c in printed if c.startswith("aws s3 cp"))


@pytest.mark.slow
def test_provider_in_a_vpc_deploys_with_the_real_aws_cli(tmp_path: Path, moto_endpoint: str) -> None:
    """The documented deploy plus the VPC and concurrency options: the network-interface policy is a resource of
    its own, created and attached only in a VPC. (The previous !If entry in the role's Policies made moto 5.2.5
    answer the deploy *without* a VPC with a 500: the test above fails on that template.)"""
    env = aws_env(tmp_path, moto_endpoint)
    vpc = run("aws ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId --output text", tmp_path, env).strip()
    subnet = run(
        f"aws ec2 create-subnet --vpc-id {vpc} --cidr-block 10.0.1.0/24 --query Subnet.SubnetId --output text",
        tmp_path,
        env,
    ).strip()
    group = run(
        f"aws ec2 create-security-group --group-name provider --description provider --vpc-id {vpc}"
        " --query GroupId --output text",
        tmp_path,
        env,
    ).strip()
    stack = f"{STACK}-vpc"
    commands = readme.pipeline_commands()
    options = f"SubnetIds={subnet} SecurityGroupIds={group} ReservedConcurrentExecutions=5 Tracing=Disabled"

    def in_the_vpc(command: str) -> str:
        if command.startswith("BUCKET="):
            return "BUCKET=my-vpc-artifacts"
        if command.startswith("aws cloudformation deploy"):
            return command.replace(f"--stack-name {STACK} ", f"--stack-name {stack} ") + f" {options}"
        return command

    script = [f"{sys.executable} -m cloudhsm_backup_restore_pipeline --dist dist", *map(in_the_vpc, commands[1:])]
    run("aws s3 mb s3://my-vpc-artifacts", tmp_path, env)
    run("\n".join(script), tmp_path, env)

    [described] = aws_json(f"cloudformation describe-stacks --stack-name {stack}", tmp_path, env)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    resources = aws_json(f"cloudformation list-stack-resources --stack-name {stack}", tmp_path, env)
    by_id = {r["LogicalResourceId"]: r for r in resources["StackResourceSummaries"]}
    assert by_id["NetworkInterfacesPolicy"]["ResourceStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    function = aws_json(f"lambda get-function --function-name {outputs['FunctionName']}", tmp_path, env)
    assert function["Configuration"]["VpcConfig"]["SubnetIds"] == [subnet]
    assert function["Configuration"]["VpcConfig"]["SecurityGroupIds"] == [group]
    assert function["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    policy_arn = by_id["NetworkInterfacesPolicy"]["PhysicalResourceId"]
    version = aws_json(f"iam get-policy --policy-arn {policy_arn}", tmp_path, env)["Policy"]["DefaultVersionId"]
    document = aws_json(f"iam get-policy-version --policy-arn {policy_arn} --version-id {version}", tmp_path, env)
    statements = document["PolicyVersion"]["Document"]
    if isinstance(statements, str):  # as for inline policies, moto may keep the repr of a dict
        statements = ast.literal_eval(statements)
    [delete] = [s for s in statements["Statement"] if "ec2:DeleteNetworkInterface" in s["Action"]]
    assert delete["Resource"] == f"arn:aws:ec2:{REGION}:123456789012:*/*"  # the Lambda Developer Guide's shape
