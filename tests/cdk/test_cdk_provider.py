"""The one provider per stack: Lambda settings from the contract, its log group, role and shared grants."""

from __future__ import annotations

from aws_cdk.assertions import Match
from cloudhsm_backup_restore_cdk import PROVIDER_ID, RestoreProvider
from cloudhsm_backup_restore_pipeline.contract import (
    ARCHITECTURE,
    DESCRIBE_ACTIONS,
    HANDLER,
    LAMBDA_TIMEOUT_SECONDS,
    LOG_RETENTION_DAYS,
    MEMORY_MB,
    POLL_PARAMETER_ACTIONS,
    POLL_PERMISSION_ACTIONS,
    POLL_RULE_ACTIONS,
    POLL_RULE_PREFIX,
    RESOURCE_TYPE,
    RUNTIME,
)

from tests.cdk.support import Synthesized, all_statements, as_list, logical_id, render, resources, statements


def test_lambda_settings_come_from_the_contract(synthesized: Synthesized) -> None:
    main = synthesized.main
    function = main.plain.provider.function
    synthesized.template(main.stack).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": RUNTIME,
            "Architectures": [ARCHITECTURE],
            "Handler": HANDLER,
            "Timeout": LAMBDA_TIMEOUT_SECONDS,
            "MemorySize": MEMORY_MB,
            "Role": {"Fn::GetAtt": [logical_id(main.stack, main.plain.provider.role), "Arn"]},
            "LoggingConfig": {"LogGroup": {"Ref": logical_id(main.stack, main.plain.provider.log_group)}},
            "VpcConfig": Match.absent(),
            "Environment": Match.absent(),
        },
    )
    assert (RUNTIME, ARCHITECTURE, HANDLER) == ("python3.14", "arm64", "cloudhsm_backup_restore.app.handler")
    assert function.node.path == f"Main/{PROVIDER_ID}/Function"


def test_one_provider_per_stack_however_many_backups(synthesized: Synthesized) -> None:
    main = synthesized.main
    template = synthesized.template(main.stack)
    template.resource_count_is(RESOURCE_TYPE, 3)
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.resource_count_is("AWS::IAM::Role", 1)
    template.resource_count_is("AWS::Logs::LogGroup", 1)
    assert main.plain.provider is main.delete.provider is main.keep.provider
    assert RestoreProvider.of(main.stack) is main.plain.provider
    token = {"Fn::GetAtt": [logical_id(main.stack, main.plain.provider.function), "Arn"]}
    for custom in resources(template.to_json(), RESOURCE_TYPE).values():
        assert custom["Properties"]["ServiceToken"] == token


def test_two_explicitly_placed_backups_share_the_vpc_provider(synthesized: Synthesized) -> None:
    first, second = synthesized.vpcs.explicit_backups
    assert first.provider is second.provider
    synthesized.template(synthesized.vpcs.explicit_stack).resource_count_is("AWS::Lambda::Function", 1)


def test_each_stack_gets_its_own_provider(synthesized: Synthesized) -> None:
    providers = {
        synthesized.main.plain.provider,
        synthesized.vpcs.default_backup.provider,
        synthesized.tokens.backup.provider,
    }
    assert len(providers) == 3


def test_log_group_has_finite_retention_and_is_the_functions(synthesized: Synthesized) -> None:
    template = synthesized.template(synthesized.main.stack)
    template.has_resource(
        "AWS::Logs::LogGroup",
        {"Properties": {"RetentionInDays": LOG_RETENTION_DAYS}, "DeletionPolicy": "Retain"},
    )
    assert 0 < LOG_RETENTION_DAYS < 3653


def test_no_managed_policies_anywhere(synthesized: Synthesized) -> None:
    for stack in (synthesized.main.stack, synthesized.vpcs.default_stack, synthesized.vpcs.explicit_stack):
        template = synthesized.template(stack)
        template.has_resource_properties("AWS::IAM::Role", {"ManagedPolicyArns": Match.absent()})
        template.resource_count_is("AWS::IAM::ManagedPolicy", 0)
        assert "arn:aws:iam::aws:policy" not in str(template.to_json())


def test_role_holds_logs_describe_and_polling_rule_grants(synthesized: Synthesized) -> None:
    main = synthesized.main
    template = synthesized.json(main.stack)
    (role,) = resources(template, "AWS::IAM::Role").values()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    (inline,) = role["Properties"]["Policies"]
    granted = {
        statement["Sid"]: (sorted(as_list(statement["Action"])), as_list(statement["Resource"]))
        for statement in (render(s) for s in inline["PolicyDocument"]["Statement"])
    }
    log_group = logical_id(main.stack, main.plain.provider.log_group)
    assert granted == {
        "WriteOwnLogs": (["logs:CreateLogStream", "logs:PutLogEvents"], [f"${{{log_group}.Arn}}"]),
        "DescribeBackups": (sorted(DESCRIBE_ACTIONS), ["*"]),
        "PollingRules": (
            sorted(POLL_RULE_ACTIONS),
            [f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{POLL_RULE_PREFIX}*"],
        ),
        "PollingResponseUrl": (
            sorted(POLL_PARAMETER_ACTIONS),
            ["arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/cloudhsm-restore/*"],
        ),
    }


def test_invoke_permission_grant_is_on_the_function_itself(synthesized: Synthesized) -> None:
    main = synthesized.main
    provider = main.plain.provider
    template = synthesized.json(main.stack)
    policy = logical_id(main.stack, provider.invoke_permission_policy)
    assert statements(template, policy) == [
        {
            "Sid": "PollingInvokePermission",
            "Action": list(POLL_PERMISSION_ACTIONS),
            "Effect": "Allow",
            "Resource": f"${{{logical_id(main.stack, provider.function)}.Arn}}",
        }
    ]
    role = logical_id(main.stack, provider.role)
    assert template["Resources"][policy]["Properties"]["Roles"] == [{"Ref": role}]


def test_no_wildcard_actions_and_star_only_for_describe(synthesized: Synthesized) -> None:
    for stack in (synthesized.main.stack, synthesized.tokens.stack):
        for statement in all_statements(synthesized.json(stack)):
            assert all("*" not in action for action in as_list(statement["Action"]))
            if "*" in as_list(statement["Resource"]):
                assert as_list(statement["Action"]) == list(DESCRIBE_ACTIONS)


def test_grants_exist_before_create_and_outlive_delete(synthesized: Synthesized) -> None:
    """The custom resource depends on its own policy and the polling one; the function on nothing redundant."""
    main = synthesized.main
    template = synthesized.json(main.stack)
    polling = logical_id(main.stack, main.plain.provider.invoke_permission_policy)
    for backup in (main.plain, main.delete, main.keep):
        body = template["Resources"][logical_id(main.stack, backup.resource)]
        assert sorted(body["DependsOn"]) == sorted([logical_id(main.stack, backup.policy), polling])
    function = template["Resources"][logical_id(main.stack, main.plain.provider.function)]
    assert "DependsOn" not in function  # the Role GetAtt orders it (cfn-lint W3005 otherwise)
