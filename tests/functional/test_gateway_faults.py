"""The offline gateway's fault injection for SSM, EventBridge and Lambda, as boto3 sees it; deployment facts."""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.exceptions
import pytest
from cloudhsm_backup_restore import polling
from cloudhsm_backup_restore_pipeline import contract
from cloudhsm_offline.eventbridge import deployment

from tests.functional.conftest import WorldFactory


def _client(world: Any, service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=world.eventbridge.url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )


def test_deny_throttle_fail_and_conflict_answer_as_each_service_does(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    faults = world.eventbridge.faults
    ssm, events, lambda_ = (_client(world, s) for s in ("ssm", "events", "lambda"))

    faults.deny("GetParameter")
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        ssm.get_parameter(Name="/cloudhsm-restore/x/y", WithDecryption=True)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "ssm:GetParameter on resource: /cloudhsm-restore/x/y" in str(denied.value)
    faults.allow("GetParameter")

    faults.throttle_next(1, "PutRule")  # botocore retries throttling: the second attempt goes through
    events.put_rule(Name="cloudhsm-poll-x-r", ScheduleExpression="rate(1 minute)")
    faults.fail_next(2, "DeleteRule")  # ... and 5xx, but not past its attempts
    with pytest.raises(botocore.exceptions.ClientError, match="InternalException"):
        events.delete_rule(Name="cloudhsm-poll-x-r")
    events.delete_rule(Name="cloudhsm-poll-x-r")

    faults.conflict_next(1, "AddPermission")  # 409, which botocore's standard mode does not retry
    with pytest.raises(botocore.exceptions.ClientError) as conflict:
        lambda_.add_permission(
            FunctionName=world.function.function_name,
            StatementId="s",
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
        )
    assert conflict.value.response["Error"]["Code"] == "ResourceConflictException"
    assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    calls = [(c.operation, c.status) for c in world.eventbridge.calls if c.service != "logs"]
    assert calls == [
        ("GetParameter", 400),
        ("PutRule", 400),
        ("PutRule", 200),
        ("DeleteRule", 500),
        ("DeleteRule", 500),
        ("DeleteRule", 200),
        ("AddPermission", 409),
    ]
    with pytest.raises(ValueError, match="unknown fault keys"):
        faults.apply({"drop_next": 1})


def test_the_deployed_function_has_its_provider_id_and_one_invoke_permission(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    assert world.function.env[contract.PROVIDER_ID_ENV] == world.provider_id
    assert polling.PROVIDER_ID_PATTERN.fullmatch(world.provider_id)
    policy = json.loads(_client(world, "lambda").get_policy(FunctionName=world.function.function_name)["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": contract.POLL_INVOKE_PRINCIPAL}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == contract.poll_source_arn_pattern(
        "aws", "us-east-1", world.account, world.provider_id
    )


def test_the_offline_deployment_facts_are_the_contracts() -> None:
    assert deployment.PROVIDER_ID_ENV == contract.PROVIDER_ID_ENV
    assert deployment.POLL_RULE_PREFIX == contract.POLL_RULE_PREFIX
