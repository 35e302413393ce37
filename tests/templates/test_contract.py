"""The templates say what contract.py says: handler, runtime, sizing, resource type and IAM."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from cloudhsm_backup_restore.properties import OnDelete
from cloudhsm_backup_restore_pipeline import contract

from tests.templates.cfn import as_list, load_file, policy_statements, resolve, resources_of_type, statement_with

FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")
PROVIDERS = ("provider.yaml", "packaged.yaml")
PROVIDER_CONDITIONS = {"InVpc": False, "AnyBackupInAccountRegion": True}
VPC_ACTIONS = set(contract.VPC_ENI_ACTIONS)
LOG_ACTIONS = set(contract.LOG_ACTIONS)
HANDLER_ACTIONS = set(
    contract.DESCRIBE_ACTIONS
    + contract.ALL_BACKUP_ACTIONS
    + contract.POLL_RULE_ACTIONS
    + contract.POLL_PARAMETER_ACTIONS
)


def packaged_conditions(on_delete: OnDelete, never_expires: bool | None) -> dict[str, bool]:
    return {"DeleteOnDelete": on_delete is OnDelete.DELETE, "SetNeverExpires": never_expires is not None}


def the_function(template: dict[str, Any]) -> dict[str, Any]:
    functions = {name: body for name, body in template["Resources"].items() if body["Type"] in FUNCTION_TYPES}
    assert list(functions) == ["Function"]
    properties: dict[str, Any] = functions["Function"]["Properties"]
    return properties


@pytest.mark.parametrize("name", PROVIDERS)
def test_function_matches_contract(name: str) -> None:
    function = the_function(load_file(name))
    assert function["Handler"] == contract.HANDLER
    assert function["Runtime"] == contract.RUNTIME
    assert function["Architectures"] == [contract.ARCHITECTURE]
    assert function["MemorySize"] == contract.MEMORY_MB
    assert function["Timeout"] == contract.LAMBDA_TIMEOUT_SECONDS
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "LogGroup"}}
    assert function["Environment"] == {"Variables": {contract.PROVIDER_ID_ENV: contract.provider_id_expression()}}


@pytest.mark.parametrize("name", PROVIDERS)
def test_log_group_has_retention_parameter(name: str) -> None:
    template = load_file(name)
    [log_group] = resources_of_type(template, "AWS::Logs::LogGroup").values()
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert template["Parameters"]["LogRetentionInDays"]["Default"] == contract.LOG_RETENTION_DAYS


@pytest.mark.parametrize("name", PROVIDERS)
def test_role_has_only_inline_policies(name: str) -> None:
    [role] = resources_of_type(load_file(name), "AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "Policies" in role["Properties"]
    assert not resources_of_type(load_file(name), "AWS::IAM::Policy")
    assert not resources_of_type(load_file(name), "AWS::IAM::ManagedPolicy")


def test_provider_grants_exactly_the_contract() -> None:
    template = load_file("provider.yaml")
    granted = {action for s in policy_statements(template, PROVIDER_CONDITIONS) for action in as_list(s["Action"])}
    assert granted == HANDLER_ACTIONS | LOG_ACTIONS
    with_vpc = {**PROVIDER_CONDITIONS, "InVpc": True}
    granted = {action for s in policy_statements(template, with_vpc) for action in as_list(s["Action"])}
    assert granted == HANDLER_ACTIONS | LOG_ACTIONS | VPC_ACTIONS


@pytest.mark.parametrize("name", PROVIDERS)
def test_describe_is_the_only_cloudhsm_action_on_star(name: str) -> None:
    template = load_file(name)
    conditions = PROVIDER_CONDITIONS if name == "provider.yaml" else packaged_conditions(OnDelete.DELETE, True)
    describe = statement_with(template, "cloudhsm:DescribeBackups", conditions)
    assert sorted(as_list(describe["Action"])) == sorted(contract.DESCRIBE_ACTIONS)
    assert describe["Resource"] == "*"
    for statement in policy_statements(template, {**conditions, "InVpc": True}):
        if statement["Resource"] == "*":
            assert all(action.split(":")[1].startswith("Describe") for action in as_list(statement["Action"]))
        assert all("*" not in action for action in as_list(statement["Action"]))
        assert statement["Effect"] == "Allow"


def test_provider_backup_actions_on_backup_arns() -> None:
    template = load_file("provider.yaml")
    statement = statement_with(template, "cloudhsm:RestoreBackup", PROVIDER_CONDITIONS)
    assert sorted(statement["Action"]) == sorted(contract.ALL_BACKUP_ACTIONS)
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cloudhsm:${AWS::Region}:${AWS::AccountId}:backup/*"
    }
    explicit = statement_with(
        template, "cloudhsm:RestoreBackup", {**PROVIDER_CONDITIONS, "AnyBackupInAccountRegion": False}
    )
    assert explicit["Resource"] == {"Ref": "BackupArns"}
    parameter = template["Parameters"]["BackupArns"]
    assert parameter["Type"] == "CommaDelimitedList"
    assert parameter["Default"] == ""
    assert "loose" in parameter["Description"]


@pytest.mark.parametrize(("on_delete", "never_expires"), list(itertools.product(OnDelete, (None, True, False))))
def test_packaged_grants_only_what_its_configuration_calls(on_delete: OnDelete, never_expires: bool | None) -> None:
    template = load_file("packaged.yaml")
    statement = statement_with(template, "cloudhsm:RestoreBackup", packaged_conditions(on_delete, never_expires))
    assert tuple(statement["Action"]) == contract.backup_actions(on_delete=on_delete, never_expires=never_expires)
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cloudhsm:${AWS::Region}:${AWS::AccountId}:backup/${BackupId}"
    }


@pytest.mark.parametrize("name", PROVIDERS)
def test_poll_rule_and_parameter_statements_are_provider_scoped(name: str) -> None:
    template = load_file(name)
    conditions = PROVIDER_CONDITIONS if name == "provider.yaml" else packaged_conditions(OnDelete.RETAIN, None)
    provider_id = {"ProviderId": contract.provider_id_expression()}
    rules = statement_with(template, "events:PutRule", conditions)
    assert sorted(rules["Action"]) == sorted(contract.POLL_RULE_ACTIONS)
    assert rules["Resource"] == {
        "Fn::Sub": [
            "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
            + contract.poll_rule_prefix("${ProviderId}")
            + "*",
            provider_id,
        ]
    }
    parameters = statement_with(template, "ssm:PutParameter", conditions)
    assert sorted(parameters["Action"]) == sorted(contract.POLL_PARAMETER_ACTIONS)
    assert parameters["Resource"] == {
        "Fn::Sub": [
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
            + contract.response_parameter_prefix("${ProviderId}")
            + "*",
            provider_id,
        ]
    }
    assert not any(  # no run-time Lambda policy edits: the one invoke permission is granted at deploy time
        str(action).startswith("lambda:")
        for body in template["Resources"].values()
        if body["Type"] in ("AWS::IAM::Role", "AWS::IAM::RolePolicy")
        for policy in body["Properties"].get("Policies", [body["Properties"]])
        if isinstance(policy, dict) and "PolicyDocument" in policy
        for statement in policy["PolicyDocument"]["Statement"]
        if isinstance(statement, dict)
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    )
    logs = statement_with(template, "logs:PutLogEvents", conditions)
    assert set(logs["Action"]) == LOG_ACTIONS
    assert logs["Resource"] == {"Fn::GetAtt": ["LogGroup", "Arn"]}


@pytest.mark.parametrize("name", PROVIDERS)
def test_one_deploy_time_invoke_permission_for_the_providers_rule_prefix(name: str) -> None:
    template = load_file(name)
    [permission] = resources_of_type(template, "AWS::Lambda::Permission").values()
    assert permission["Properties"] == {
        "FunctionName": {"Fn::GetAtt": ["Function", "Arn"]},
        "Action": "lambda:InvokeFunction",
        "Principal": contract.POLL_INVOKE_PRINCIPAL,
        "SourceAccount": {"Ref": "AWS::AccountId"},
        "SourceArn": {
            "Fn::Sub": [
                contract.poll_source_arn_pattern(
                    "${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}", "${ProviderId}"
                ),
                {"ProviderId": contract.provider_id_expression()},
            ]
        },
    }


def test_provider_vpc_permissions_only_in_vpc() -> None:
    template = load_file("provider.yaml")
    create = statement_with(template, "ec2:CreateNetworkInterface", {**PROVIDER_CONDITIONS, "InVpc": True})
    assert create["Resource"]["Fn::Split"][0] == ","
    function = the_function(template)
    assert resolve(function, PROVIDER_CONDITIONS).get("VpcConfig") is None
    assert resolve(function, {**PROVIDER_CONDITIONS, "InVpc": True})["VpcConfig"] == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }
    for parameter in ("SubnetIds", "SecurityGroupIds"):
        assert template["Parameters"][parameter]["Default"] == ""


def test_provider_exports_service_token() -> None:
    output = load_file("provider.yaml")["Outputs"]["ServiceToken"]
    assert output["Value"] == {"Fn::GetAtt": ["Function", "Arn"]}
    assert output["Export"] == {"Name": {"Fn::Sub": "${AWS::StackName}-ServiceToken"}}
    assert set(load_file("provider.yaml")["Parameters"]) >= {
        "S3Bucket",
        "S3Key",
        "SubnetIds",
        "SecurityGroupIds",
        "LogRetentionInDays",
        "BackupArns",
    }


@pytest.mark.parametrize("name", ["consumer.yaml", "packaged.yaml"])
def test_consumer_resource_matches_contract(name: str) -> None:
    template = load_file(name)
    [(logical_id, resource)] = resources_of_type(template, contract.RESOURCE_TYPE).items()
    properties = resource["Properties"]
    assert set(properties) <= set(contract.RESOURCE_PROPERTIES + contract.CLOUDFORMATION_PROPERTIES)
    assert {"ServiceToken", "ServiceTimeout", "BackupId", "OnDelete", "NeverExpires"} <= set(properties)
    known = set(contract.ATTRIBUTE_NAMES) | {"TagList", "TagsTruncated"}
    read = [
        output["Value"]["Fn::GetAtt"]
        for output in template["Outputs"].values()
        if isinstance(output["Value"], dict) and "Fn::GetAtt" in output["Value"]
    ]
    attributes = {attribute for target, attribute in read if target == logical_id}
    assert {"ClusterId", "BackupState", "CreateTimestamp"} <= attributes
    assert all(attribute in known or attribute.startswith("Tag.") for attribute in attributes)


def test_consumer_imports_the_exported_token_and_reads_a_dotted_tag() -> None:
    template = load_file("consumer.yaml")
    resource = template["Resources"]["RestoredBackup"]["Properties"]
    assert resource["ServiceToken"] == {"Fn::ImportValue": {"Fn::Sub": "${ProviderStackName}-ServiceToken"}}
    tag = template["Outputs"]["EnvironmentTag"]
    assert tag["Value"] == {"Fn::GetAtt": ["RestoredBackup", "Tag.Environment"]}
    assert tag["Condition"] == "ShowEnvironmentTag"  # GetAtt on a tag the backup lacks would fail the stack
    assert template["Parameters"]["OnDelete"]["AllowedValues"] == [choice.value for choice in OnDelete]


def test_packaged_restore_waits_for_the_poll_permissions() -> None:
    resource = load_file("packaged.yaml")["Resources"]["RestoredBackup"]
    assert resource["DependsOn"] == ["PollInvokePermission"]
    assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["Function", "Arn"]}


@pytest.mark.parametrize(("on_delete", "never_expires"), list(itertools.product(OnDelete, (None, True, False))))
def test_every_configuration_may_record_ownership_and_protect(on_delete: OnDelete, never_expires: bool | None) -> None:
    """Issue 9: the ownership record (a tag) and the default NeverExpires protection apply to every resource."""
    actions = contract.backup_actions(on_delete=on_delete, never_expires=never_expires)
    assert set(contract.OWNERSHIP_ACTIONS) <= set(actions)
    assert "cloudhsm:ModifyBackupAttributes" in actions
    assert ("cloudhsm:DeleteBackup" in actions) is (on_delete is OnDelete.DELETE)
    assert contract.OWNER_TAG_KEY.startswith("cloudhsm-backup-restore:")
    assert not contract.OWNER_TAG_KEY.startswith("aws:")
