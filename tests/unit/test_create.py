"""Create through the real handler: GIVEN a stubbed CloudHSM, THEN the one body PUT to the ResponseURL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from botocore.stub import ANY
from cloudhsm_backup_restore import app, polling
from cloudhsm_backup_restore.attributes import ATTRIBUTE_NAMES

from tests.unit.conftest import (
    BACKUP_ARN,
    BACKUP_ID,
    OWNER_KEY,
    PARAMETER,
    PROVIDER_ID,
    RULE,
    STACK_ID,
    FakeContext,
    World,
    backup,
    expect_failed,
    expect_success,
)


def test_pending_deletion_is_restored_and_answered_in_one_invocation(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    world.protect()
    body = expect_success(world.invoke("Create"))
    data = body["Data"]
    assert set(ATTRIBUTE_NAMES) <= set(data)
    assert data["BackupState"] == "READY"
    assert data["BackupArn"] == body["PhysicalResourceId"]
    assert data["CreateTimestamp"] == "2026-11-01T12:30:00Z"
    assert data["NeverExpires"] == "true"  # protected from the retention policy by default
    assert data["SourceRegion"] == ""
    assert data["Tag.Environment"] == "prod"
    assert data["TagList"] == '[{"Key":"Environment","Value":"prod"}]'
    assert all(isinstance(value, str) for value in data.values())
    assert world.clock.sleeps == []  # READY in RestoreBackup's answer: no wait, no polling rule


def test_restore_that_takes_a_while_is_waited_for_in_process(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    for _ in range(3):
        world.describe(backup("CREATE_IN_PROGRESS"))
    world.describe(backup("READY"))
    world.protect()
    body = expect_success(world.invoke("Create"))
    assert body["Data"]["BackupState"] == "READY"
    assert world.clock.sleeps == [1.0, 1.5, 2.25, 3.375]


def test_create_in_progress_is_waited_for_without_restoring(world: World) -> None:
    world.describe(backup("CREATE_IN_PROGRESS"))
    world.describe(backup("READY"))
    expect_success(world.invoke("Create"))


def test_ready_backup_succeeds_and_so_does_a_duplicate_delivery(world: World) -> None:
    world.describe(backup("READY"))
    event = world.event("Create")
    first = world.invoke("Create", event=event)
    world.describe(backup("READY"))
    second = world.invoke("Create", event=event)
    assert len(first) == 1
    assert len(second) == 2
    assert [body["Status"] for body in second] == ["SUCCESS", "SUCCESS"]
    assert second[0]["Data"] == second[1]["Data"]


def test_restore_refused_because_a_concurrent_delivery_won_still_succeeds(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.error("restore_backup", "CloudHsmInvalidRequestException", message="Backup is not in PENDING_DELETION")
    world.describe(backup("READY"))
    expect_success(world.invoke("Create"))


def test_restore_refused_while_still_pending_deletion_fails_fast_in_aws_words(world: World) -> None:
    aws_words = "Backup backup-abcdefghijk cannot be restored at this time."
    world.describe(backup("PENDING_DELETION"))
    world.error("restore_backup", "CloudHsmInvalidRequestException", message=aws_words)
    world.describe(backup("PENDING_DELETION"))
    body = expect_failed(world.invoke("Create"), "refused to restore", "still PENDING_DELETION", aws_words)
    assert body["PhysicalResourceId"].startswith("create-failed-")
    assert world.clock.sleeps == []  # no wait until ServiceTimeout


def test_restore_refused_during_a_duplicate_delivery_of_the_restoring_request_waits(world: World) -> None:
    # The first delivery restored (and recorded this very resource as owner); its restore is still taking effect.
    from cloudhsm_backup_restore.ownership import Resource

    me = Resource(STACK_ID, "RestoredBackup", BACKUP_ARN)
    owned = [{"Key": OWNER_KEY, "Value": f"{me.token} owner unit/RestoredBackup"}]
    world.describe(backup("PENDING_DELETION"))
    world.error("restore_backup", "CloudHsmInvalidRequestException", message="Restore already in progress")
    world.describe(backup("PENDING_DELETION", TagList=owned, NeverExpires=True))  # protected by the first, too
    world.describe(backup("READY", TagList=owned, NeverExpires=True))
    expect_success(world.invoke("Create"))


def test_deleted_backup_fails_naming_id_region_and_state(world: World) -> None:
    world.describe(backup("DELETED"))
    body = expect_failed(world.invoke("Create"), BACKUP_ID, "us-east-1", "DELETED", "7-day")
    assert not re.fullmatch(r"backup-[2-7a-zA-Z]{11,16}", body["PhysicalResourceId"])
    assert body["Data"] == {}


def test_missing_backup_fails_naming_id_and_region(world: World) -> None:
    world.describe(None)
    body = expect_failed(world.invoke("Create"), f"Backup {BACKUP_ID} in us-east-1 was not found")
    assert body["PhysicalResourceId"].startswith("create-failed-")


def test_region_property_targets_that_region(world: World) -> None:
    world.describe(None)
    expect_failed(
        world.invoke("Create", ResourceProperties={"BackupId": BACKUP_ID, "Region": "eu-west-1"}),
        "in eu-west-1 was not found",
    )


def test_never_expires_false_opts_out_of_the_protection(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    body = expect_success(world.invoke("Create", ResourceProperties={"BackupId": BACKUP_ID, "NeverExpires": "false"}))
    assert body["Data"]["NeverExpires"] == "false"


def test_never_expires_is_applied_after_the_restore(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    world.cloudhsm.add_response(
        "modify_backup_attributes",
        {"Backup": backup("READY", NeverExpires=True)},
        {"BackupId": BACKUP_ID, "NeverExpires": True},
    )
    body = expect_success(world.invoke("Create", ResourceProperties={"BackupId": BACKUP_ID, "NeverExpires": "true"}))
    assert body["Data"]["NeverExpires"] == "true"


def test_never_expires_already_as_asked_makes_no_call(world: World) -> None:
    world.describe(backup("READY", NeverExpires=True))
    body = expect_success(world.invoke("Create", ResourceProperties={"BackupId": BACKUP_ID, "NeverExpires": "true"}))
    assert body["Data"]["NeverExpires"] == "true"


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({}, "Property BackupId is required"),
        ({"BackupId": "backup-1"}, "Property BackupId must match"),
        ({"BackupId": BACKUP_ID, "Colour": "x"}, "Unknown property Colour; valid properties are BackupId"),
        ({"BackupId": BACKUP_ID, "OnDelete": "Keep"}, "Property OnDelete must be Retain or Delete"),
    ],
)
def test_bad_properties_fail_without_any_api_call(world: World, properties: dict[str, Any], reason: str) -> None:
    expect_failed(world.invoke("Create", ResourceProperties=properties), reason)


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("ThrottlingException", 400, "still failed after 9 attempts (ThrottlingException)"),
        ("CloudHsmInternalFailureException", 500, "(CloudHsmInternalFailureException)"),
    ],
)
def test_aws_errors_are_translated(world: World, code: str, status: int, reason: str) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.error("restore_backup", code, status)
    expect_failed(world.invoke("Create"), reason)


def test_access_denied_is_retried_while_a_fresh_grant_propagates_then_named(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    for _ in range(4):
        world.error("restore_backup", "CloudHsmAccessDeniedException")
    expect_failed(world.invoke("Create"), "Access denied: the provider's role needs cloudhsm:RestoreBackup")
    assert world.clock.sleeps == [2.0, 4.0, 8.0]


def test_access_denied_that_clears_after_propagation_succeeds(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.error("restore_backup", "CloudHsmAccessDeniedException")
    world.restored(backup("READY"))
    world.protect()
    expect_success(world.invoke("Create"))
    assert world.clock.sleeps == [2.0]


def test_access_denied_on_describe_names_that_action(world: World) -> None:
    world.error("describe_backups", "CloudHsmAccessDeniedException")
    expect_failed(world.invoke("Create"), "cloudhsm:DescribeBackups")


def _capture_put_targets(world: World) -> list[dict[str, Any]]:
    captured: list[dict[str, Any]] = []
    client = app.helper.polling.client("events")

    def remember(params: dict[str, Any], **_: Any) -> None:
        captured.append(params)

    client.meta.events.register("provide-client-params.events.PutTargets", remember)
    return captured


def _expect_handoff(world: World, rule: str = RULE) -> None:
    """The hand-off's calls: park the ResponseURL, create the rule, point it at the function; no Lambda policy edit."""
    world.ssm.add_response(
        "put_parameter",
        {"Version": 1},
        {"Name": f"/cloudhsm-restore/{PROVIDER_ID}/{rule}", "Value": ANY, "Type": "SecureString", "Overwrite": False},
    )
    world.events.add_response(
        "put_rule",
        {"RuleArn": f"arn:aws:events:us-east-1:123456789012:rule/{rule}"},
        {"Name": rule, "ScheduleExpression": "rate(1 minute)", "State": "ENABLED", "Description": ANY},
    )
    world.events.add_response("put_targets", {"FailedEntryCount": 0}, {"Rule": rule, "Targets": ANY})


def _poll(
    world: World, poll_event: dict[str, Any], timeout: float = 300.0, then: Callable[[World], None] | None = None
) -> None:
    """One EventBridge poll invocation: it reads the ResponseURL back from SSM first, then ``then``'s calls."""
    world.ssm.add_response(
        "get_parameter",
        {"Parameter": {"Name": PARAMETER, "Type": "SecureString", "Value": world.last_url}},
        {"Name": PARAMETER, "WithDecryption": True},
    )
    if then is not None:
        then(world)
    app.handler(poll_event, FakeContext(world.clock, timeout=timeout))


def _expect_cleanup(world: World) -> None:
    """A finished poll: claim the answer by deleting the parked ResponseURL, then remove the target and the rule."""
    world.ssm.add_response("delete_parameter", {}, {"Name": PARAMETER})
    world.events.add_response("remove_targets", {"FailedEntryCount": 0}, {"Rule": RULE, "Ids": ["1"]})
    world.events.add_response("delete_rule", {}, {"Name": RULE})


def _handed_off(world: World, timeout: float = 70.0, **overrides: Any) -> dict[str, Any]:
    """Create on a backup that stays PENDING_DELETION: nothing answered, polling set up; the poll event.

    With 70 s of Lambda time and a 90 s hand-off margin the Create hands off at once, without a second check.
    """
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    _expect_handoff(world)
    targets = _capture_put_targets(world)
    assert world.invoke("Create", timeout=timeout, **overrides) == []
    return json.loads(targets[0]["Targets"][0]["Input"])  # type: ignore[no-any-return]


def test_long_restore_hands_off_to_polling_and_a_poll_answers(world: World) -> None:
    logical_id = "L" * 255
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    rule = polling.rule_name(PROVIDER_ID, STACK_ID, logical_id)
    _expect_handoff(world, rule)
    targets = _capture_put_targets(world)
    stored: list[dict[str, Any]] = []
    app.helper.polling.client("ssm").meta.events.register(
        "provide-client-params.ssm.PutParameter", lambda params, **_: stored.append(dict(params))
    )
    rule_names: list[str] = []
    app.helper.polling.client("events").meta.events.register(
        "provide-client-params.events.PutRule", lambda params, **_: rule_names.append(params["Name"])
    )

    first = world.invoke("Create", timeout=70.0, LogicalResourceId=logical_id)

    assert first == []  # nothing answered yet: the wait continues through EventBridge
    assert rule_names == [rule]
    assert len(rule) == 64
    assert rule.startswith(f"cloudhsm-poll-{PROVIDER_ID}-")  # the provider's prefix: IAM is scoped to it
    poll_event = json.loads(targets[0]["Targets"][0]["Input"])
    assert poll_event["CrHelperPoll"] is True
    assert len(targets[0]["Targets"][0]["Input"]) <= 8192
    # The ResponseURL is a secret: it waits in an SSM SecureString, never in the EventBridge target.
    assert "ResponseURL" not in poll_event
    assert "X-Amz-Signature" not in targets[0]["Targets"][0]["Input"]
    assert stored == [
        {
            "Name": f"/cloudhsm-restore/{PROVIDER_ID}/{rule}",
            "Value": world.last_url,
            "Type": "SecureString",
            "Overwrite": False,
        }
    ]
    assert "CrHelperPermission" not in poll_event  # no per-wait Lambda permission

    world.describe(backup("READY"))
    world.protect()
    parameter = f"/cloudhsm-restore/{PROVIDER_ID}/{rule}"
    world.ssm.add_response(
        "get_parameter",
        {"Parameter": {"Name": parameter, "Type": "SecureString", "Value": world.last_url}},
        {"Name": parameter, "WithDecryption": True},
    )
    world.ssm.add_response("delete_parameter", {}, {"Name": parameter})
    world.events.add_response("remove_targets", {"FailedEntryCount": 0}, {"Rule": rule, "Ids": ["1"]})
    world.events.add_response("delete_rule", {}, {"Name": rule})
    app.handler(poll_event, FakeContext(world.clock))
    body = expect_success(world.capture.responses(world.last_path))
    assert body["Data"]["BackupState"] == "READY"
    assert "WaitStartedAt" not in body["Data"]
    assert "PhysicalResourceId" not in body["Data"]


def test_poll_that_is_still_waiting_answers_nothing(world: World) -> None:
    poll_event = _handed_off(world)

    # A poll with only 30 s of Lambda time left checks once and leaves the rule in place.
    world.describe(backup("PENDING_DELETION"))
    _poll(world, poll_event, timeout=30.0)
    assert world.capture.responses(world.last_path) == []


def test_poll_past_the_overall_deadline_fails_with_last_state_and_time_waited(world: World) -> None:
    poll_event = _handed_off(world, ResourceProperties={"BackupId": BACKUP_ID, "ServiceTimeout": "600"})

    world.clock.t += 560  # past the overall deadline (600 s - 60 s margin), before CloudFormation gives up
    world.describe(backup("PENDING_DELETION"))
    _poll(world, poll_event, then=_expect_cleanup)
    body = expect_failed(
        world.capture.responses(world.last_path),
        BACKUP_ID,
        "still PENDING_DELETION after waiting",
        "ServiceTimeout is 600 s",
    )
    assert body["PhysicalResourceId"].startswith("create-failed-")


def test_a_duplicate_poll_that_loses_the_claim_stays_silent(world: World) -> None:
    poll_event = _handed_off(world)

    # Another poll already answered: its DeleteParameter succeeded, so this one's finds nothing and acts on nothing.
    world.describe(backup("READY"))

    def already_cleaned(world: World) -> None:
        world.ssm.add_client_error("delete_parameter", service_error_code="ParameterNotFound")
        world.events.add_client_error("remove_targets", service_error_code="ResourceNotFoundException")
        world.events.add_client_error("delete_rule", service_error_code="ResourceNotFoundException")

    _poll(world, poll_event, then=already_cleaned)
    assert world.capture.responses(world.last_path) == []


def test_a_failed_hand_off_undoes_what_it_made_and_answers_once(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    world.ssm.add_response(
        "put_parameter", {"Version": 1}, {"Name": PARAMETER, "Value": ANY, "Type": "SecureString", "Overwrite": False}
    )
    world.events.add_response(
        "put_rule",
        {"RuleArn": f"arn:aws:events:us-east-1:123456789012:rule/{RULE}"},
        {"Name": RULE, "ScheduleExpression": "rate(1 minute)", "State": "ENABLED", "Description": ANY},
    )
    world.events.add_client_error(
        "put_targets", service_error_code="AccessDeniedException", service_message="not authorized: events:PutTargets"
    )
    world.events.add_response("delete_rule", {}, {"Name": RULE})
    world.ssm.add_response("delete_parameter", {}, {"Name": PARAMETER})
    body = expect_failed(world.invoke("Create", timeout=70.0), "events:PutTargets failed", "not authorized")
    assert body["PhysicalResourceId"].startswith("create-failed-")


def test_timeout_guard_fires_three_seconds_before_the_deadline(world: World) -> None:
    seen: list[float] = []

    def remember_remaining(*args: object, **kwargs: object) -> None:
        seen.append(app.helper._timer.interval)
        raise AssertionError("stop here")

    world.describe(backup("READY"))
    original = app.lifecycle.run
    try:
        app.lifecycle.run = remember_remaining  # type: ignore[method-assign]
        expect_failed(world.invoke("Create", timeout=100.0), "Unexpected AssertionError: stop here")
    finally:
        app.lifecycle.run = original  # type: ignore[method-assign]
        world.cloudhsm._queue.clear()
    assert seen == [97.0]


def test_a_poll_waits_at_most_its_window_then_leaves_the_rule_to_fire_again(world: World) -> None:
    poll_event = _handed_off(world)
    for _ in range(40):
        world.describe(backup("PENDING_DELETION"))
    began = world.clock.now()
    _poll(world, poll_event)
    assert world.capture.responses(world.last_path) == []
    assert world.clock.now() - began == pytest.approx(40.0)
    world.cloudhsm._queue.clear()


def test_a_throttled_check_while_waiting_is_skipped_not_fatal(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    world.error("describe_backups", "ThrottlingException")
    world.error("describe_backups", "CloudHsmInternalFailureException", status=500)
    world.describe(backup("READY"))
    world.protect()
    body = expect_success(world.invoke("Create"))
    assert body["Data"]["BackupState"] == "READY"
    assert world.clock.sleeps == [1.0, 1.5, 2.25]


def test_access_denied_while_waiting_still_fails(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    world.error("describe_backups", "CloudHsmAccessDeniedException")
    expect_failed(world.invoke("Create"), "cloudhsm:DescribeBackups")


def test_a_poll_that_finds_the_response_parameter_gone_stays_silent(world: World) -> None:
    poll_event = _handed_off(world)
    world.ssm.add_client_error("get_parameter", service_error_code="ParameterNotFound")
    app.handler(poll_event, FakeContext(world.clock))
    assert world.capture.responses(world.last_path) == []


def test_a_restore_refused_because_another_stack_restored_it_just_now_takes_nothing_over(world: World) -> None:
    from cloudhsm_backup_restore.ownership import Resource

    other = Resource(STACK_ID.replace("unit/", "other/"), "AnotherResource", BACKUP_ARN)
    owned = [{"Key": OWNER_KEY, "Value": f"{other.token} owner other/AnotherResource"}]
    world.describe(backup("PENDING_DELETION"))
    world.error("restore_backup", "CloudHsmInvalidRequestException", message="Backup is not in PENDING_DELETION")
    world.describe(backup("READY", TagList=owned))
    body = expect_success(world.invoke("Create"))  # no TagResource stubbed: across stacks nothing is taken over
    assert body["Data"]["NeverExpires"] == "false"
