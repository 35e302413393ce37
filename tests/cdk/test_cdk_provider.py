"""The one provider per stack: Lambda settings from the contract, its log group, role and shared grants."""

from __future__ import annotations

from aws_cdk.assertions import Annotations, Match
from cloudhsm_backup_restore_cdk import RestoreProvider
from cloudhsm_backup_restore_cdk.grants import OWNED_BACKUP_ACTIONS
from cloudhsm_backup_restore_pipeline.contract import (
    ARCHITECTURE,
    DESCRIBE_ACTIONS,
    EVENT_INVOKE_MAX_EVENT_AGE_SECONDS,
    EVENT_INVOKE_MAX_RETRY_ATTEMPTS,
    HANDLER,
    LAMBDA_TIMEOUT_SECONDS,
    LOG_RETENTION_DAYS,
    MEMORY_MB,
    OWNER_TAG_KEY,
    POLL_INVOKE_PRINCIPAL,
    POLL_PARAMETER_ACTIONS,
    POLL_RULE_ACTIONS,
    PROVIDER_ID_ENV,
    RESOURCE_TYPE,
    RUNTIME,
    poll_rule_prefix,
    provider_id_expression,
    response_parameter_prefix,
)

from tests.cdk.support import Synthesized, all_statements, as_list, logical_id, render, resources, statements

PROVIDER_ID_EXPRESSION = provider_id_expression()


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
            "Environment": {"Variables": {PROVIDER_ID_ENV: PROVIDER_ID_EXPRESSION}},
            "ReservedConcurrentExecutions": Match.absent(),
            "TracingConfig": {"Mode": "Active"},
            "DeadLetterConfig": {
                "TargetArn": {"Fn::GetAtt": [logical_id(main.stack, main.plain.provider.dead_letter_queue), "Arn"]}
            },
        },
    )
    assert (RUNTIME, ARCHITECTURE, HANDLER) == ("python3.14", "arm64", "cloudhsm_backup_restore.app.handler")
    assert function.node.path == "Main/CloudHsmBackupRestoreProvider/Function"


def test_event_invoke_config_never_retries_and_drops_events_past_the_longest_service_timeout(
    synthesized: Synthesized,
) -> None:
    """The contract's AWS::Lambda::EventInvokeConfig, on the function's unqualified ARN ($LATEST)."""
    main = synthesized.main
    for stack in (main.stack, synthesized.vpcs.default_stack, synthesized.tokens.stack):
        template = synthesized.template(stack)
        template.resource_count_is("AWS::Lambda::EventInvokeConfig", 1)
    synthesized.template(main.stack).has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": logical_id(main.stack, main.plain.provider.function)},
            "Qualifier": "$LATEST",
            "MaximumRetryAttempts": EVENT_INVOKE_MAX_RETRY_ATTEMPTS,
            "MaximumEventAgeInSeconds": EVENT_INVOKE_MAX_EVENT_AGE_SECONDS,
        },
    )
    assert (EVENT_INVOKE_MAX_RETRY_ATTEMPTS, EVENT_INVOKE_MAX_EVENT_AGE_SECONDS) == (0, 3600)


def test_one_provider_per_stack_however_many_backups(synthesized: Synthesized) -> None:
    main = synthesized.main
    template = synthesized.template(main.stack)
    template.resource_count_is(RESOURCE_TYPE, 3)
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.resource_count_is("AWS::IAM::Role", 1)
    template.resource_count_is("AWS::Logs::LogGroup", 1)
    assert main.plain.provider is main.delete.provider is main.keep.provider
    assert [child for child in main.stack.node.children if isinstance(child, RestoreProvider)] == [main.plain.provider]
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


def test_no_aws_managed_and_no_inline_policies(synthesized: Synthesized) -> None:
    """Only customer managed policies: nothing for AwsSolutions-IAM4 nor NIST/HIPAA IAMNoInlinePolicy to find."""
    cases = [
        (synthesized.main.stack, synthesized.main.plain.provider),
        (synthesized.vpcs.default_stack, synthesized.vpcs.default_backup.provider),
        (synthesized.vpcs.explicit_stack, synthesized.vpcs.explicit_backups[0].provider),
    ]
    for stack, provider in cases:
        template = synthesized.json(stack)
        role = {"Ref": logical_id(stack, provider.role)}
        assert set(template["Resources"][role["Ref"]]["Properties"]) == {"AssumeRolePolicyDocument", "Description"}
        inline = [
            body for body in resources(template, "AWS::IAM::Policy").values() if role in body["Properties"]["Roles"]
        ]
        assert inline == []
        attached = [
            body
            for body in resources(template, "AWS::IAM::ManagedPolicy").values()
            if role in body["Properties"]["Roles"]
        ]
        # the provider policy (with the network interfaces of a VPC function), the backup policies
        assert len(attached) == 1 + len(provider.backup_policies)
        assert "arn:aws:iam::aws:policy" not in str(template)


def test_provider_policy_holds_logs_describe_and_own_polling_grants(synthesized: Synthesized) -> None:
    main = synthesized.main
    template = synthesized.json(main.stack)
    (role,) = resources(template, "AWS::IAM::Role").values()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    policy = logical_id(main.stack, main.plain.provider.policy)
    granted = [
        (statement.get("Sid"), sorted(as_list(statement["Action"])), as_list(statement["Resource"]))
        for statement in statements(template, policy)
    ]
    log_group = logical_id(main.stack, main.plain.provider.log_group)
    dead_letter_queue = logical_id(main.stack, main.plain.provider.dead_letter_queue)
    provider_id = render({"Fn::Join": ["", [PROVIDER_ID_EXPRESSION]]})
    assert granted == [
        ("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"${{{log_group}.Arn}}"]),
        ("DescribeBackups", sorted(DESCRIBE_ACTIONS), ["*"]),
        ("OwnedBackups", sorted(OWNED_BACKUP_ACTIONS), ["arn:${AWS::Partition}:cloudhsm:*:${AWS::AccountId}:backup/*"]),
        (
            "PollingRules",
            sorted(POLL_RULE_ACTIONS),
            [
                f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{poll_rule_prefix(provider_id)}*"
            ],
        ),
        (
            "PollingResponseUrl",
            sorted(POLL_PARAMETER_ACTIONS),
            [
                "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/"
                f"{response_parameter_prefix(provider_id).lstrip('/')}*"
            ],
        ),
        # aws-cdk-lib's own grants for the function's dead-letter queue and tracing, routed here.
        (None, ["sqs:SendMessage"], [f"${{{dead_letter_queue}.Arn}}"]),
        (None, ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
    ]
    (owned,) = [s for s in statements(template, policy) if s.get("Sid") == "OwnedBackups"]
    assert owned["Condition"] == {"Null": {f"aws:ResourceTag/{OWNER_TAG_KEY}": "false"}}
    assert template["Resources"][policy]["Properties"]["Roles"] == [
        {"Ref": logical_id(main.stack, main.plain.provider.role)}
    ]


def test_one_invoke_permission_at_deploy_time_and_no_run_time_permission_grant(synthesized: Synthesized) -> None:
    """EventBridge may invoke the function for this provider's rules only; the role cannot edit the resource policy."""
    main = synthesized.main
    template = synthesized.json(main.stack)
    function = logical_id(main.stack, main.plain.provider.function)
    provider_id = render({"Fn::Join": ["", [PROVIDER_ID_EXPRESSION]]})
    (permission,) = resources(template, "AWS::Lambda::Permission").values()
    assert render(permission["Properties"]) == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": f"${{{function}.Arn}}",
        "Principal": POLL_INVOKE_PRINCIPAL,
        "SourceAccount": "${AWS::AccountId}",
        "SourceArn": f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{poll_rule_prefix(provider_id)}*",
    }
    lambda_grants = [s for s in all_statements(template) if any(a.startswith("lambda:") for a in as_list(s["Action"]))]
    assert lambda_grants == []


def test_provider_id_is_the_contracts_expression(synthesized: Synthesized) -> None:
    stack = synthesized.main.stack
    assert stack.resolve(synthesized.main.plain.provider.provider_id) == provider_id_expression()


def test_no_wildcard_actions_and_star_only_where_iam_has_no_resource_level_permission(
    synthesized: Synthesized,
) -> None:
    """Resource '*' only for DescribeBackups and X-Ray's two actions (neither has resource-level permissions)."""
    for stack in (synthesized.main.stack, synthesized.tokens.stack):
        for statement in all_statements(synthesized.json(stack)):
            assert all("*" not in action for action in as_list(statement["Action"]))
            if "*" in as_list(statement["Resource"]):
                assert sorted(as_list(statement["Action"])) in (
                    list(DESCRIBE_ACTIONS),
                    ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                )


def test_grants_exist_before_create_and_outlive_delete(synthesized: Synthesized) -> None:
    """Each custom resource depends on the backup policy holding its grant, the provider policy and the invoke
    permission (three backups fit one backup policy)."""
    main = synthesized.main
    provider = main.plain.provider
    template = synthesized.json(main.stack)
    (backup_policy,) = provider.backup_policies
    shared = [
        logical_id(main.stack, backup_policy),
        logical_id(main.stack, provider.policy),
        logical_id(main.stack, provider.poll_permission),
    ]
    for backup in (main.plain, main.delete, main.keep):
        body = template["Resources"][logical_id(main.stack, backup.resource)]
        assert sorted(body["DependsOn"]) == sorted(shared)
    function = template["Resources"][logical_id(main.stack, provider.function)]
    # Lambda checks the role's permissions (dead-letter queue, VPC) when it creates the function.
    assert sorted(function["DependsOn"]) == sorted(logical_id(main.stack, p) for p in (provider.policy, provider.role))


def test_default_dead_letter_queue_is_encrypted_and_tls_only(synthesized: Synthesized) -> None:
    template = synthesized.template(synthesized.main.stack)
    template.has_resource_properties(
        "AWS::SQS::Queue", {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 1209600}
    )
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": [
                    Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
                ]
            }
        },
    )


def test_synth_leaves_no_warning_or_error_annotation(synthesized: Synthesized) -> None:
    """The acknowledgments and checks add nothing a user would see at synth (cdk synth prints these)."""
    stacks = [synthesized.main.stack, synthesized.vpcs.default_stack, synthesized.vpcs.explicit_stack]
    for stack in [*stacks, synthesized.tokens.stack]:
        annotations = Annotations.from_stack(stack)
        assert annotations.find_warning("*", Match.any_value()) == []
        assert annotations.find_error("*", Match.any_value()) == []
