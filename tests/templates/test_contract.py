"""The templates say what contract.py says: handler, runtime, sizing, resource type and IAM."""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import pytest
from cloudhsm_backup_restore.properties import OnDelete
from cloudhsm_backup_restore_pipeline import contract

from tests.templates.cfn import as_list, load_file, policy_statements, resolve, resources_of_type, statement_with

FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")
PROVIDERS = ("provider.yaml",)
PROVIDER_CONDITIONS = {
    "InVpc": False,
    "AnyBackupInAccountRegion": True,
    "TracingOn": True,
    "NewDeadLetterQueue": True,
    "EncryptLogGroup": False,
    "EncryptEnvironment": False,
    "ReserveConcurrency": False,
}
"""The defaults: the construct's (tracing on, a new dead-letter queue, no key, no reserved concurrency, no VPC)."""
VPC_ACTIONS = set(contract.VPC_ENI_ACTIONS)
LOG_ACTIONS = set(contract.LOG_ACTIONS)
TRACING_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
"""What the construct grants with tracing on (cdk/.../provider.py), Resource '*' (X-Ray has no resource type)."""
DEAD_LETTER_ACTIONS = {"sqs:SendMessage"}
HANDLER_ACTIONS = set(
    contract.DESCRIBE_ACTIONS
    + contract.ALL_BACKUP_ACTIONS
    + contract.POLL_RULE_ACTIONS
    + contract.POLL_PARAMETER_ACTIONS
)


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


def test_event_invoke_config_matches_contract() -> None:
    """Issue 15: no Lambda retry of an asynchronous event, none older than the longest ServiceTimeout."""
    [config] = resources_of_type(load_file("provider.yaml"), "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"] == {
        "FunctionName": {"Ref": "Function"},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": contract.EVENT_INVOKE_MAX_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": contract.EVENT_INVOKE_MAX_EVENT_AGE_SECONDS,
    }
    assert "Condition" not in config


CONSTRUCT_OPTIONS = {
    # parameter: the RestoreProvider props it stands for (a template takes ids where the construct takes objects)
    "SubnetIds": ("vpc", "vpc_subnets"),
    "SecurityGroupIds": ("security_groups",),
    "LogRetentionInDays": ("log_retention",),
    "LogGroupEncryptionKey": ("log_group_encryption_key",),
    "ReservedConcurrentExecutions": ("reserved_concurrent_executions",),
    "Tracing": ("tracing",),
    "DeadLetterQueue": ("dead_letter_queue",),
}
NOT_TEMPLATE_OPTIONS = {"role", "function_name", "log_group", "log_removal_policy", "allow_public_subnet"}
"""Construct objects with no template parameter: the template always creates its own role, function and log
group (a stack that brings its own uses the CDK construct); its log group keeps CloudFormation's default
DeletionPolicy; a public subnet is the caller's choice of SubnetIds, which the template does not inspect."""


def provider_defaults() -> dict[str, Any]:
    """RestoreProvider's keyword options and their defaults, read from the construct itself."""
    from cloudhsm_backup_restore_cdk import RestoreProvider
    from cloudhsm_backup_restore_cdk.provider import DEFAULT_LOG_RETENTION

    signature = inspect.signature(RestoreProvider.__init__)
    defaults = {n: p.default for n, p in signature.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    # None means "the construct's default" for log_retention (so that INFINITE stays expressible).
    assert defaults["log_retention"] is None
    return defaults | {"log_retention": DEFAULT_LOG_RETENTION}


def cfn_tracing_mode(member: Any) -> str:
    """aws_lambda.Tracing.PASS_THROUGH -> PassThrough, the TracingConfig Mode (and Disabled: no TracingConfig)."""
    return "".join(word.title() for word in member.value.split("_"))


def test_provider_parameters_are_the_constructs_options() -> None:
    defaults = provider_defaults()
    mapped = {prop for props in CONSTRUCT_OPTIONS.values() for prop in props}
    assert mapped | NOT_TEMPLATE_OPTIONS == set(defaults)
    parameters = load_file("provider.yaml")["Parameters"]
    for parameter, props in CONSTRUCT_OPTIONS.items():
        if all(defaults[prop] is None for prop in props):
            assert parameters[parameter]["Default"] == "", parameter


def test_provider_tracing_and_log_retention_defaults_are_the_constructs() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_logs as logs
    from aws_cdk.assertions import Template

    defaults = provider_defaults()
    parameters = load_file("provider.yaml")["Parameters"]
    assert parameters["Tracing"]["Default"] == cfn_tracing_mode(defaults["tracing"])
    assert parameters["Tracing"]["AllowedValues"] == [cfn_tracing_mode(m) for m in lambda_.Tracing]
    stack = Stack(App(), "Retention")
    logs.LogGroup(stack, "LogGroup", retention=defaults["log_retention"])
    [log_group] = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup").values()
    assert parameters["LogRetentionInDays"]["Default"] == log_group["Properties"]["RetentionInDays"]
    assert log_group["Properties"]["RetentionInDays"] == contract.LOG_RETENTION_DAYS


def test_defaults_resolve_to_the_constructs_function() -> None:
    """Tracing Active, a new SQS-encrypted TLS-only 14-day queue, no key, no reservation, no VPC."""
    template = load_file("provider.yaml")
    function = resolve(the_function(template), PROVIDER_CONDITIONS)
    assert function["TracingConfig"] == {"Mode": {"Ref": "Tracing"}}
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": ["DefaultDeadLetterQueue", "Arn"]}}
    for absent in ("KmsKeyArn", "ReservedConcurrentExecutions", "VpcConfig"):
        assert absent not in function
    queue = template["Resources"]["DefaultDeadLetterQueue"]
    assert queue["Condition"] == "NewDeadLetterQueue"
    assert queue["Properties"] == {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600}
    [tls_only] = template["Resources"]["DefaultDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert tls_only["Effect"] == "Deny"
    assert tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    log_group = resolve(template["Resources"]["LogGroup"]["Properties"], PROVIDER_CONDITIONS)
    assert "KmsKeyId" not in log_group


def test_every_option_set_reaches_the_function() -> None:
    template = load_file("provider.yaml")
    chosen = {
        **PROVIDER_CONDITIONS,
        "InVpc": True,
        "NewDeadLetterQueue": False,
        "EncryptLogGroup": True,
        "EncryptEnvironment": True,
        "ReserveConcurrency": True,
        "TracingOn": False,
    }
    function = resolve(the_function(template), chosen)
    assert function["KmsKeyArn"] == {"Ref": "EnvironmentEncryption"}
    assert function["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrentExecutions"}
    assert function["DeadLetterConfig"] == {"TargetArn": {"Ref": "DeadLetterQueue"}}
    assert "TracingConfig" not in function
    assert resolve(template["Resources"]["LogGroup"]["Properties"], chosen)["KmsKeyId"] == {
        "Ref": "LogGroupEncryptionKey"
    }
    dead_letter = statement_with(template, "sqs:SendMessage", chosen)
    assert dead_letter["Resource"] == {"Ref": "DeadLetterQueue"}


@pytest.mark.parametrize("name", PROVIDERS)
def test_log_group_has_retention_parameter(name: str) -> None:
    template = load_file(name)
    [log_group] = resources_of_type(template, "AWS::Logs::LogGroup").values()
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert template["Parameters"]["LogRetentionInDays"]["Default"] == contract.LOG_RETENTION_DAYS


@pytest.mark.parametrize("name", PROVIDERS)
def test_role_has_no_aws_managed_policy(name: str) -> None:
    """Inline policies, plus the template's own network-interface policy in a VPC; no AWS managed policy."""
    template = load_file(name)
    [role] = resources_of_type(template, "AWS::IAM::Role").values()
    assert resolve(role["Properties"], PROVIDER_CONDITIONS).get("ManagedPolicyArns") is None
    assert resolve(role["Properties"], {**PROVIDER_CONDITIONS, "InVpc": True})["ManagedPolicyArns"] == [
        {"Ref": "NetworkInterfacesPolicy"}
    ]
    assert "Policies" in role["Properties"]
    assert not resources_of_type(template, "AWS::IAM::Policy")


def granted_actions(template: dict[str, Any], conditions: dict[str, bool]) -> set[str]:
    return {action for s in policy_statements(template, conditions) for action in as_list(s["Action"])}


def test_provider_grants_exactly_the_contract() -> None:
    template = load_file("provider.yaml")
    base = HANDLER_ACTIONS | LOG_ACTIONS | DEAD_LETTER_ACTIONS
    assert granted_actions(template, PROVIDER_CONDITIONS) == base | TRACING_ACTIONS
    assert granted_actions(template, {**PROVIDER_CONDITIONS, "TracingOn": False}) == base
    with_vpc = {**PROVIDER_CONDITIONS, "InVpc": True}
    assert granted_actions(template, with_vpc) == base | TRACING_ACTIONS | VPC_ACTIONS


@pytest.mark.parametrize("name", PROVIDERS)
def test_describe_is_the_only_cloudhsm_action_on_star(name: str) -> None:
    template = load_file(name)
    conditions = PROVIDER_CONDITIONS
    describe = statement_with(template, "cloudhsm:DescribeBackups", conditions)
    assert sorted(as_list(describe["Action"])) == sorted(contract.DESCRIBE_ACTIONS)
    assert describe["Resource"] == "*"
    for statement in policy_statements(template, {**conditions, "InVpc": True}):
        if statement["Resource"] == "*":
            actions = set(as_list(statement["Action"]))
            assert actions == TRACING_ACTIONS or all(action.split(":")[1].startswith("Describe") for action in actions)
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


@pytest.mark.parametrize("name", PROVIDERS)
def test_poll_rule_and_parameter_statements_are_provider_scoped(name: str) -> None:
    template = load_file(name)
    conditions = PROVIDER_CONDITIONS
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
    # A policy resource of its own, attached by the role only in a VPC: no conditional entry in the role's
    # Policies list (moto 5.2.5 answers such a deploy with a 500; cfripper crashes on it).
    [(name, policy)] = resources_of_type(template, "AWS::IAM::ManagedPolicy").items()
    assert policy["Condition"] == "InVpc"
    role = template["Resources"]["Role"]["Properties"]
    assert role["ManagedPolicyArns"] == {"Fn::If": ["InVpc", [{"Ref": name}], {"Ref": "AWS::NoValue"}]}
    assert all("Fn::If" not in entry for entry in role["Policies"])
    # Lambda Developer Guide (VPC execution role permissions): DeleteNetworkInterface needs a specific resource
    # id or all resource ids ("arn:aws:ec2:<region>:<account>:*/*"); network-interface/* may fail the function.
    delete = statement_with(template, "ec2:DeleteNetworkInterface", {**PROVIDER_CONDITIONS, "InVpc": True})
    assert delete["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:*/*"}
    describe = statement_with(template, "ec2:DescribeNetworkInterfaces", {**PROVIDER_CONDITIONS, "InVpc": True})
    assert describe["Resource"] == "*"
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


def test_consumer_resource_matches_contract() -> None:
    template = load_file("consumer.yaml")
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


@pytest.mark.parametrize(("on_delete", "never_expires"), list(itertools.product(OnDelete, (None, True, False))))
def test_every_configuration_may_record_ownership_and_protect(on_delete: OnDelete, never_expires: bool | None) -> None:
    """Issue 9: the ownership record (a tag) and the default NeverExpires protection apply to every resource."""
    actions = contract.backup_actions(on_delete=on_delete, never_expires=never_expires)
    assert set(contract.OWNERSHIP_ACTIONS) <= set(actions)
    assert "cloudhsm:ModifyBackupAttributes" in actions
    assert ("cloudhsm:DeleteBackup" in actions) is (on_delete is OnDelete.DELETE)
    assert contract.OWNER_TAG_KEY.startswith("cloudhsm-backup-restore:")
    assert not contract.OWNER_TAG_KEY.startswith("aws:")
