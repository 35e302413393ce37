"""The polling hand-off: never silent, never leaking, bounded in time, one provider's names only (issue 10).

GIVEN a Create handed off to polling (stubbed SSM/EventBridge/Lambda), WHEN a poll invocation meets a failure
or an event it does not run, THEN it answers once (or, unable to read the ResponseURL, stays silent) and stops
the polling: the calls each test stubs are exactly the clean-up CloudFormation's owner would want.
"""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries import standard
from cloudhsm_backup_restore import app, polling
from cloudhsm_backup_restore.polling import PROVIDER_ID_ENV
from cloudhsm_backup_restore.waiting import WaitPolicy

from tests.unit.conftest import (
    BACKUP_ID,
    PARAMETER,
    RULE,
    FakeContext,
    World,
    backup,
    expect_failed,
    expect_success,
)
from tests.unit.test_create import _expect_cleanup, _handed_off, _poll


def _stop_rule(world: World) -> None:
    world.events.add_response("remove_targets", {"FailedEntryCount": 0}, {"Rule": RULE, "Ids": ["1"]})
    world.events.add_response("delete_rule", {}, {"Name": RULE})


def _invoke(world: World, poll_event: dict[str, Any]) -> list[dict[str, Any]]:
    app.handler(poll_event, FakeContext(world.clock))
    return world.capture.responses(world.last_path)


# -- rule 1: never silent, never forever ------------------------------------------------------------


def test_an_unreadable_response_url_stops_the_polling_at_once(world: World) -> None:
    poll_event = _handed_off(world)
    world.ssm.add_client_error("get_parameter", service_error_code="AccessDeniedException", http_status_code=400)
    world.ssm.add_response("delete_parameter", {}, {"Name": PARAMETER})
    _stop_rule(world)
    assert _invoke(world, poll_event) == []  # nothing to answer with; the rule no longer fires


def test_a_kms_failure_reading_the_response_url_stops_the_polling(world: World) -> None:
    poll_event = _handed_off(world)
    world.ssm.add_client_error("get_parameter", service_error_code="InvalidKeyId", http_status_code=400)
    world.ssm.add_response("delete_parameter", {}, {"Name": PARAMETER})
    _stop_rule(world)
    assert _invoke(world, poll_event) == []


def test_a_throttled_read_leaves_the_rule_for_the_next_firing_before_the_deadline(world: World) -> None:
    poll_event = _handed_off(world)
    world.ssm.add_client_error("get_parameter", service_error_code="ThrottlingException", http_status_code=400)
    assert _invoke(world, poll_event) == []  # no clean-up calls: the next firing reads again


def test_any_poll_past_the_deadline_only_tears_down(world: World) -> None:
    poll_event = _handed_off(world, ResourceProperties={"BackupId": BACKUP_ID, "ServiceTimeout": "600"})
    world.clock.t += 601  # CloudFormation stopped waiting: no CloudHSM call, no answer, nothing left
    world.ssm.add_response("delete_parameter", {}, {"Name": PARAMETER})
    _stop_rule(world)
    assert _invoke(world, poll_event) == []


def test_past_the_deadline_a_parameter_that_cannot_be_deleted_still_stops_the_rule(world: World) -> None:
    """The rule goes even when the parked ResponseURL stays (denied): the resource's Delete removes it later."""
    poll_event = _handed_off(world, ResourceProperties={"BackupId": BACKUP_ID, "ServiceTimeout": "600"})
    world.clock.t += 601
    world.ssm.add_client_error("delete_parameter", service_error_code="AccessDeniedException")
    _stop_rule(world)
    assert _invoke(world, poll_event) == []


def test_the_response_parameter_gone_means_answered_elsewhere_and_stops_the_rule(world: World) -> None:
    poll_event = _handed_off(world)
    world.ssm.add_client_error("get_parameter", service_error_code="ParameterNotFound")
    _stop_rule(world)  # e.g. the answering poll's DeleteRule failed: this firing sweeps the rule
    assert _invoke(world, poll_event) == []


def test_taking_the_answer_that_fails_still_answers_and_retries_the_removal(world: World) -> None:
    poll_event = _handed_off(world)
    world.describe(backup("READY"))
    world.protect()

    def take_fails(world: World) -> None:
        world.ssm.add_client_error("delete_parameter", service_error_code="InternalServerError", http_status_code=500)
        world.ssm.add_response("delete_parameter", {}, {"Name": PARAMETER})  # the tear-down's second try
        _stop_rule(world)

    _poll(world, poll_event, then=take_fails)
    expect_success(world.capture.responses(world.last_path))


def test_a_delete_rule_that_fails_is_retried_by_the_next_firing(world: World) -> None:
    poll_event = _handed_off(world)
    world.describe(backup("READY"))
    world.protect()

    def delete_rule_fails(world: World) -> None:
        world.ssm.add_response("delete_parameter", {}, {"Name": PARAMETER})
        world.events.add_response("remove_targets", {"FailedEntryCount": 0}, {"Rule": RULE, "Ids": ["1"]})
        world.events.add_client_error("delete_rule", service_error_code="InternalException", http_status_code=500)

    _poll(world, poll_event, then=delete_rule_fails)
    expect_success(world.capture.responses(world.last_path))
    # A target-less rule never fires; the resource's Delete removes it (PollingHandOff.end) by its name.
    world.describe(backup("READY"))
    expect_success(world.invoke("Delete"))


@pytest.mark.parametrize("partial", [False, True])
def test_a_remove_targets_that_fails_leaves_the_target_for_its_next_firing(world: World, partial: bool) -> None:
    poll_event = _handed_off(world)
    world.describe(backup("READY"))
    world.protect()

    def remove_targets_fails(world: World) -> None:
        world.ssm.add_response("delete_parameter", {}, {"Name": PARAMETER})
        if partial:  # "can partially fail if too many requests are made at the same time"
            failed = [{"TargetId": "1", "ErrorCode": "ConcurrentModificationException", "ErrorMessage": "busy"}]
            world.events.add_response("remove_targets", {"FailedEntryCount": 1, "FailedEntries": failed})
        else:
            world.events.add_client_error(
                "remove_targets", service_error_code="InternalException", http_status_code=500
            )

    _poll(world, poll_event, then=remove_targets_fails)
    expect_success(world.capture.responses(world.last_path))
    world.ssm.add_client_error("get_parameter", service_error_code="ParameterNotFound")  # the next firing
    _stop_rule(world)
    app.handler(poll_event, FakeContext(world.clock))
    assert len(world.capture.responses(world.last_path)) == 1


# -- rule 4: upgrades mid-wait ---------------------------------------------------------------------


def test_a_provider_without_its_id_refuses_to_hand_off_naming_the_variable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PROVIDER_ID_ENV)
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    expect_failed(world.invoke("Create", timeout=70.0), PROVIDER_ID_ENV, "deploy the provider")


# -- rule 5: bounded in time -----------------------------------------------------------------------


def test_a_throttled_first_check_of_a_poll_is_skipped_not_fatal(world: World) -> None:
    poll_event = _handed_off(world)
    world.error("describe_backups", "ThrottlingException")
    world.describe(backup("READY"))
    world.protect()
    _poll(world, poll_event, then=_expect_cleanup)
    expect_success(world.capture.responses(world.last_path))


def test_too_little_lambda_time_left_for_a_hand_off_answers_failed_instead(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    expect_failed(world.invoke("Create", timeout=60.0), "Cannot hand the wait off", "a hand-off may need 65 s")


def test_the_client_settings_are_derived_from_the_margin_and_fit_it() -> None:
    margin = WaitPolicy().handoff_margin
    attempts, connect, read = polling.handoff_client_settings(margin)
    assert attempts >= 2  # throttling is retried at least once
    worst = polling.HANDOFF_CALLS * polling.call_worst_case(attempts, connect, read)
    reserve = polling.LAST_CHECK_RESERVE + polling.TIMER_MARGIN_SECONDS + polling.RESPONSE_SOCKET_TIMEOUT
    assert worst + reserve <= margin
    assert polling.HANDOFF_CLIENT_CONFIG.read_timeout == read
    assert polling.HANDOFF_CLIENT_CONFIG.retries == {"mode": "standard", "total_max_attempts": attempts}
    with pytest.raises(ValueError, match="no time"):
        polling.handoff_client_settings(20.0)


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.getvalue()


def test_the_worst_case_hand_off_fits_the_margin_on_an_injected_clock(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every attempt of every hand-off call is throttled at the read timeout with the longest retry-after."""
    monkeypatch.setattr(standard.ExponentialBackoff.__init__, "__defaults__", (20, lambda: 1.0, None, None))
    monkeypatch.setattr("botocore.endpoint.time.sleep", world.clock.sleep)
    succeed = {"PutParameter", "PutRule"}  # ... on their last attempt, after the worst wait; PutTargets fails
    attempts: dict[str, int] = {}

    def throttled(request: Any, event_name: str, **_: Any) -> AWSResponse:
        operation = event_name.rsplit(".", 1)[-1]
        attempts[operation] = attempts.get(operation, 0) + 1
        world.clock.t += polling.HANDOFF_CONNECT_TIMEOUT + polling.HANDOFF_READ_TIMEOUT
        if operation in succeed and attempts[operation] == polling.HANDOFF_ATTEMPTS:
            body = (
                {"Version": 1}
                if operation == "PutParameter"
                else {"RuleArn": f"arn:aws:events:us-east-1:1:rule/{RULE}"}
            )
            return AWSResponse(request.url, 200, {}, _Body(json.dumps(body).encode()))
        error = {"__type": "ThrottlingException", "message": "Rate exceeded"}
        return AWSResponse(request.url, 400, {"x-amz-retry-after": "60000"}, _Body(json.dumps(error).encode()))

    clients = {}
    for service in ("events", "ssm", "lambda"):
        clients[service] = boto3.client(service, region_name="us-east-1", config=polling.HANDOFF_CLIENT_CONFIG)
        clients[service].meta.events.register("before-send", throttled)
    monkeypatch.setattr(app.helper.polling, "_clients", clients)
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    began = world.clock.now()
    body = expect_failed(world.invoke("Create", timeout=70.0), "events:PutTargets failed", "ThrottlingException")
    spent = world.clock.now() - began
    assert attempts == dict.fromkeys(
        ("PutParameter", "PutRule", "PutTargets", "DeleteRule", "DeleteParameter"), polling.HANDOFF_ATTEMPTS
    )
    assert spent == pytest.approx(polling.HANDOFF_WORST_CASE)
    assert spent + polling.TIMER_MARGIN_SECONDS <= 70.0  # crhelper's timer (70 s - 3 s) never saw it
    assert body["PhysicalResourceId"].startswith("create-failed-")


def test_a_poll_event_missing_fields_answers_failed_and_stops_the_polling(world: World) -> None:
    poll_event = _handed_off(world)
    del poll_event["StackId"]

    def teardown(world: World) -> None:
        world.ssm.add_response("delete_parameter", {}, {"Name": PARAMETER})
        _stop_rule(world)

    _poll(world, poll_event, then=teardown)
    expect_failed(world.capture.responses(world.last_path), "Malformed CloudFormation request", "StackId")


def test_the_timer_firing_after_the_poll_took_the_answer_answers_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    poll_event = _handed_off(world)
    world.describe(backup("READY"))
    world.protect()
    original = app.lifecycle._protect

    def timer_then_protect(*args: Any, **kwargs: Any) -> Any:
        app.helper._timeout()  # the guard fires after the poll took the answer: it answers, the poll does not
        return original(*args, **kwargs)

    monkeypatch.setattr(app.lifecycle, "_protect", timer_then_protect)
    _poll(world, poll_event, then=_expect_cleanup)
    expect_failed(world.capture.responses(world.last_path), "Execution timed out")


def _parked_already(world: World, value: str) -> None:
    world.ssm.add_client_error("put_parameter", service_error_code="ParameterAlreadyExists")
    world.ssm.add_response(
        "get_parameter",
        {"Parameter": {"Name": PARAMETER, "Type": "SecureString", "Value": value}},
        {"Name": PARAMETER, "WithDecryption": True},
    )


def test_a_duplicate_delivery_that_finds_its_own_wait_parked_stays_silent(world: World) -> None:
    # One wait per resource: the parameter holding this very ResponseURL is the first delivery's, whose polls answer.
    event = world.event("Create")
    world.describe(backup("PENDING_DELETION"))
    world.error("restore_backup", "CloudHsmInvalidRequestException", message="Restore already in progress")
    world.describe(backup("CREATE_IN_PROGRESS"))
    _parked_already(world, world.last_url)
    assert world.invoke("Create", timeout=70.0, event=event) == []  # no rule of its own, no second answer


def test_a_parameter_left_by_an_earlier_wait_fails_the_hand_off_within_its_budget(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    _parked_already(world, "https://example.invalid/an-earlier-request")
    expect_failed(world.invoke("Create", timeout=70.0), "ssm:PutParameter failed", "ParameterAlreadyExists")
