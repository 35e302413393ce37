"""Lifecycle rules (replacement, rollback, redelivery, timeouts), EventBridge polling, templates and the CLI."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from cloudhsm_offline.cfn.stack import StackRunner
from cloudhsm_offline.cfn.template import TemplateError
from cloudhsm_offline.cli import main

from tests.functional.conftest import FIXTURE_HANDLERS, WorldFactory, assert_clean

TEMPLATE = """
Parameters:
  Mode:
    Type: String
    Default: ok
    AllowedValues: [ok, failed]
  Id:
    Type: String
    AllowedPattern: ^phys-[0-9]+$
Conditions:
  Never: !Equals [!Ref Mode, nothing]
Resources:
  Provider:
    Type: AWS::Lambda::Function
  First:
    Type: Custom::Fixture
    Properties:
      ServiceToken: !GetAtt Provider.Arn
      Mode: !Ref Mode
      Id: !Ref Id
      Count: 3
  Second:
    Type: AWS::CloudFormation::CustomResource
    Properties:
      ServiceToken: !ImportValue provider-ServiceToken
      Id: !Sub "${First.Greeting}-2"
      Skipped: !If [Never, x, !Ref AWS::NoValue]
  Ghost:
    Type: Custom::Fixture
    Condition: Never
    Properties:
      ServiceToken: x
Outputs:
  Greeting:
    Value: !GetAtt First.Greeting
  Env:
    Value: !GetAtt First.Tag.Environment
  Physical:
    Value: !Ref First
  Joined:
    Value: !Sub "${First}/${Second}/${AWS::Region}"
  Missing:
    Value: !GetAtt Second.NotThere
"""


# -- replacement and rollback ------------------------------------------------------------------


def test_replacement_deletes_the_old_resource(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    sim = world.simulator
    assert sim.create("Res", {"Mode": "ok", "Id": "phys-1"}).ok
    sim.resources["Res"].physical_id = "old-id"  # as if Create had answered old-id
    sim.resources["Res"].properties = {"Mode": "ok", "Id": "phys-1", "Marker": "old"}
    event_count = len(sim.events)
    updated = sim.update("Res", {"Mode": "change-id-on-delete"})
    assert updated.ok
    assert updated.physical_resource_id == "another-id"
    cleanup = updated.cleanup
    assert cleanup is not None
    assert cleanup.ok
    delete_event = sim.events[event_count + 1]
    assert delete_event["RequestType"] == "Delete"
    assert delete_event["PhysicalResourceId"] == "old-id"
    assert delete_event["ResourceProperties"]["Marker"] == "old"
    assert sim.resources["Res"].physical_id == "another-id"
    assert_clean(world)


def test_failed_create_rolls_back_with_the_failed_physical_id(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    outcome = world.simulator.create("Res", {"Mode": "failed"})
    assert outcome.status == "FAILED"
    assert outcome.response_status == "FAILED"
    assert outcome.reason == "it broke"
    assert outcome.violations == []
    rollback = outcome.rollback
    assert rollback is not None
    assert rollback.operation == "Delete"
    assert rollback.event["PhysicalResourceId"] == "failed-id"
    assert rollback.ok
    assert "Res" not in world.simulator.resources


def test_create_without_a_response_rolls_back_with_an_invented_id(fixture_world: WorldFactory) -> None:
    world = fixture_world(async_retry_delays=())
    outcome = world.simulator.create("Res", {"Mode": "empty-id"})
    assert [v.code for v in outcome.violations] == ["physical-id-missing"]
    rollback = outcome.rollback
    assert rollback is not None
    assert rollback.event["PhysicalResourceId"].startswith("offline-stack-Res-")


def test_failed_update_rolls_back_with_swapped_properties(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    sim = world.simulator
    assert sim.create("Res", {"Mode": "ok", "Id": "phys-1"}).ok
    outcome = sim.update("Res", {"Mode": "failed"})
    assert outcome.status == "FAILED"
    back = outcome.rollback
    assert back is not None
    assert back.role == "update-rollback"
    assert back.event["RequestType"] == "Update"
    assert back.event["ResourceProperties"]["Mode"] == "ok"
    assert back.event["OldResourceProperties"]["Mode"] == "failed"
    assert back.event["PhysicalResourceId"] == "phys-1"


# -- responses: duplicates, redelivery, timeouts -----------------------------------------------


def test_two_responses_from_one_delivery_are_a_violation(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    outcome = world.simulator.create("Res", {"Mode": "twice"}, rollback=False)
    assert outcome.status == "FAILED"
    assert [v.code for v in outcome.violations] == ["duplicate-response"]
    assert len(outcome.responses) == 2


def test_duplicate_delivery_gets_one_consistent_response_per_delivery(fixture_world: WorldFactory) -> None:
    world = fixture_world(duplicate_delivery=True)
    outcome = world.simulator.create("Res", {"Mode": "ok"})
    assert outcome.ok, outcome.violations
    assert outcome.deliveries == 2
    assert len(outcome.responses) == 2
    assert {r.request_id for r in outcome.responses} == {outcome.request_id}
    assert_clean(world)


def test_deliver_again_reuses_request_id_and_response_url(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    outcome = world.simulator.create("Res", {"Mode": "ok"})
    invocation = world.simulator.deliver_again(outcome.event)
    assert invocation.wait(10)
    second, first = world.function.records[-1], world.function.records[0]
    assert second.event["RequestId"] == first.event["RequestId"]
    assert second.event["ResponseURL"] == first.event["ResponseURL"]
    assert second.source == "cloudformation:redelivery"
    assert len(world.responses.responses(outcome.request_id)) == 2
    assert_clean(world)


def test_no_response_before_service_timeout_fails_the_operation(fixture_world: WorldFactory) -> None:
    world = fixture_world(async_retry_delays=())
    outcome = world.simulator.create("Res", {"Mode": "never"}, service_timeout=5, rollback=False)
    assert outcome.timed_out
    assert outcome.status == "FAILED"
    assert outcome.reason.startswith("CloudFormation did not receive a response")
    assert outcome.elapsed_modelled >= 5


def test_a_late_response_counts_as_a_timeout_and_is_reported(fixture_world: WorldFactory) -> None:
    world = fixture_world(lambda_timeout=120, async_retry_delays=())
    outcome = world.simulator.create("Res", {"Mode": "sleep", "Seconds": 60}, service_timeout=20, rollback=False)
    assert outcome.timed_out
    assert world.function.wait_idle(10)
    assert [v.code for v in world.verify()] == ["late-response"]


def test_crash_is_retried_by_lambda_async(fixture_world: WorldFactory) -> None:
    world = fixture_world(async_retry_delays=(60, 120))
    outcome = world.simulator.create("Res", {"Mode": "crash"}, service_timeout=600, rollback=False)
    assert outcome.timed_out
    attempts = [r.attempt for r in world.function.records]
    assert attempts == [1, 2, 3]
    starts = [r.start_modelled for r in world.function.records]
    assert starts[1] - starts[0] >= 60
    assert starts[2] - starts[1] >= 120


@pytest.mark.parametrize(("mode", "words"), [("exit", "exit status 137"), ("kill", "signal: killed")])
def test_a_runtime_that_dies_mid_invocation_is_an_exit_error_not_a_timeout(
    fixture_world: WorldFactory, mode: str, words: str
) -> None:
    world = fixture_world(async_retry_delays=())
    outcome = world.simulator.create("Res", {"Mode": mode}, service_timeout=120, rollback=False)
    assert outcome.timed_out  # no response ever came: CloudFormation times out
    (record,) = world.function.records
    assert not record.timed_out
    assert record.error is not None
    assert record.error["errorType"] == "Runtime.ExitError"
    assert record.error["errorMessage"].endswith(f"Error: Runtime exited with error: {words}")
    assert (record.end_modelled or 0) - (record.start_modelled or 0) < 60  # well before the 60 s Lambda timeout


# -- EventBridge -------------------------------------------------------------------------------


def test_crhelper_polling_fires_on_the_compressed_clock_and_cleans_up(fixture_world: WorldFactory) -> None:
    world = fixture_world(handler="polling_handler.handler", layer_packages=("crhelper",))
    outcome = world.simulator.create("Res", {"WaitSeconds": 150})
    assert outcome.ok, outcome.summary()
    assert outcome.physical_resource_id == "polled-resource"
    assert outcome.data == {"Started": outcome.data["Started"], "Polled": "yes"}
    bridge = world.eventbridge
    assert bridge is not None
    assert bridge.count("PutRule") == 1
    assert bridge.count("AddPermission") == 1
    assert bridge.count("PutTargets") == 1
    assert bridge.count("RemoveTargets") == 1
    assert bridge.count("RemovePermission") == 1
    assert bridge.count("DeleteRule") == 1
    assert bridge.rules_removed() == 1
    fired = [f for f in bridge.firings if f.problem is None]
    assert 2 <= len(fired) <= 4
    assert outcome.invocations == 1 + len(fired)
    (rule,) = bridge.rules.values()
    assert rule.removed is not None
    assert rule.period == 60
    assert 150 <= outcome.elapsed_modelled < 150 + 60 * 4
    assert bridge.active_rules() == []
    assert_clean(world)


def test_a_rule_without_lambda_permission_does_not_fire(fixture_world: WorldFactory) -> None:
    # A generous Lambda timeout: the invocation's cold start and first moto calls are real time, which the
    # compressed clock multiplies; on a loaded machine 60 modelled seconds were not always enough.
    world = fixture_world(async_retry_delays=(), lambda_timeout=300)
    outcome = world.simulator.create("Res", {"Mode": "schedule-without-permission"}, service_timeout=400)
    assert outcome.timed_out
    bridge = world.eventbridge
    assert bridge is not None
    assert bridge.firings
    assert all(f.invocation is None for f in bridge.firings)
    assert "may not invoke the function" in bridge.problems[0]
    assert [r.source for r in world.function.records if r.event.get("Scheduled")] == []
    codes = {v.code for v in world.verify()}
    assert codes == {"eventbridge", "rule-left-behind"}


def _events_client(world: Any) -> Any:
    return boto3.client(
        "events",
        region_name="us-east-1",
        endpoint_url=world.eventbridge.url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )


def test_the_gateway_enforces_eventbridge_limits(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    events = _events_client(world)
    with pytest.raises(botocore.exceptions.ClientError, match="less than or equal to 64"):
        events.put_rule(Name="x" * 65, ScheduleExpression="rate(1 minute)")
    with pytest.raises(botocore.exceptions.ClientError, match="ScheduleExpression is not valid"):
        events.put_rule(Name="ok", ScheduleExpression="rate(1 minutes)")
    events.put_rule(Name="ok", ScheduleExpression="rate(2 minutes)")
    target = {"Id": "1", "Arn": world.function.arn}
    with pytest.raises(botocore.exceptions.ClientError, match="less than or equal to 8192"):
        events.put_targets(Rule="ok", Targets=[{**target, "Input": json.dumps({"k": "v" * 8200})}])
    with pytest.raises(botocore.exceptions.ClientError, match="not valid JSON"):
        events.put_targets(Rule="ok", Targets=[{**target, "Input": "{nope"}])
    events.put_targets(Rule="ok", Targets=[{**target, "Input": json.dumps({"k": "v"})}])
    assert world.eventbridge is not None
    assert [c.status for c in world.eventbridge.calls] == [400, 400, 200, 400, 400, 200]
    assert world.eventbridge.rules["ok"].period == 120
    events.remove_targets(Rule="ok", Ids=["1"])
    events.delete_rule(Name="ok")
    assert world.eventbridge.wait_quiet(5)
    assert world.eventbridge.active_rules() == []


# -- templates ---------------------------------------------------------------------------------


def test_template_runner_creates_resolves_outputs_updates_and_deletes(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    # An Output whose GetAtt fails fails the stack (tests/functional/test_multi_resource.py): left out here.
    template = TEMPLATE[: TEMPLATE.index("  Missing:")]
    runner = StackRunner(world.simulator, template, {"Id": "phys-1"})
    assert runner.custom_resources() == ["First", "Second"]
    created = runner.create()
    assert [o.operation for o in created.outcomes] == ["Create", "Create"]
    first, second = (o.event["ResourceProperties"] for o in created.outcomes)
    assert first["ServiceToken"] == world.function.arn
    assert first["Count"] == "3"
    assert second == {"ServiceToken": world.function.arn, "Id": "hello-2"}
    outputs = {o.name: (o.value, o.error) for o in created.outputs}
    assert outputs["Greeting"] == ("hello", None)
    assert outputs["Env"] == ("test", None)
    assert outputs["Physical"] == ("phys-1", None)
    assert outputs["Joined"] == ("phys-1/hello-2/us-east-1", None)
    assert created.ok
    assert created.status == "CREATE_COMPLETE"

    unchanged = runner.update({"Id": "phys-1"})
    assert unchanged.outcomes == []
    updated = runner.update({"Id": "phys-2"})
    assert [o.logical_id for o in updated.outcomes] == ["First"]
    assert updated.outcomes[0].event["OldResourceProperties"]["Id"] == "phys-1"

    deleted = runner.delete()
    assert [(o.operation, o.logical_id) for o in deleted.outcomes] == [("Delete", "Second"), ("Delete", "First")]
    assert deleted.ok
    assert_clean(world)


def test_template_parameters_are_checked(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    with pytest.raises(TemplateError, match="needs a value"):
        StackRunner(world.simulator, TEMPLATE, {})
    with pytest.raises(TemplateError, match="does not match"):
        StackRunner(world.simulator, TEMPLATE, {"Id": "nope"})
    with pytest.raises(TemplateError, match="not one of"):
        StackRunner(world.simulator, TEMPLATE, {"Id": "phys-1", "Mode": "weird"})
    with pytest.raises(TemplateError, match="unknown parameters"):
        StackRunner(world.simulator, TEMPLATE, {"Id": "phys-1", "Other": "x"})


def test_a_failed_create_rolls_back_the_created_resources(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    template = TEMPLATE.replace('Id: !Sub "${First.Greeting}-2"', "Id: phys-2\n      Mode: failed")
    run = StackRunner(world.simulator, template, {"Id": "phys-1"}).create()
    assert [(o.operation, o.logical_id, o.status) for o in run.outcomes] == [
        ("Create", "First", "SUCCESS"),
        ("Create", "Second", "FAILED"),
        ("Delete", "First", "SUCCESS"),
    ]
    rollback = run.outcomes[1].rollback
    assert rollback is not None
    assert rollback.event["PhysicalResourceId"] == "failed-id"
    assert run.outputs == []


# -- the command line --------------------------------------------------------------------------


def test_run_template_cli_prints_a_timeline_and_hides_signatures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE.replace("  Missing:\n    Value: !GetAtt Second.NotThere\n", ""))
    status = main(
        [
            "run-template",
            str(template),
            "--code",
            str(FIXTURE_HANDLERS),
            "--handler",
            "fixture_handlers.handler",
            "--param",
            "Id=phys-1",
            "--update",
            "Id=phys-3",
            "--delete",
            "--logs",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "CFN>  Create First" in out
    assert "response to request" in out
    assert "Outputs after Create" in out
    assert "Joined  phys-1/hello-2/us-east-1" in out or "phys-1/hello-2/us-east-1" in out
    assert "Update First" in out
    assert "Delete stack" in out
    assert re.search("X-Amz-Signature=[0-9a-f]{64}", out) is None
    assert "all operations succeeded" in out


def test_run_template_cli_fails_on_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(
        "Resources:\n  R:\n    Type: Custom::X\n    Properties:\n      ServiceToken: x\n      Mode: non-string-data\n"
    )
    status = main(
        [
            "run-template",
            str(template),
            "--code",
            str(FIXTURE_HANDLERS),
            "--handler",
            "fixture_handlers.handler",
        ]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert "data-not-string" in out


def test_cli_rejects_bad_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run-template", "x.yaml", "--param", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_the_real_handler_end_to_end() -> None:
    from cloudhsm_offline.demo import run_demo

    out = io.StringIO()
    status = run_demo(out=out)
    text = out.getvalue()
    assert status == 0, text
    assert "Demo passed" in text
    assert "HSM   RestoreBackup backup-demo2restore -> ok" in text
    assert "[cleanup]" in text
    assert '"Key":"Environment","Value":"demo"' in text
    assert "X-Amz-Signature" not in text
