"""The response protocol: one matchable body per invocation, whatever arrives; secrets never logged."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from cloudhsm_backup_restore import app
from cloudhsm_backup_restore.attributes import body_size

from tests.unit.conftest import BACKUP_ID, FakeContext, World, backup, expect_failed, expect_success


def test_malformed_event_with_a_response_url_gets_one_failed_answer(world: World) -> None:
    event = world.event("Create")
    del event["StackId"]
    app.handler(event, FakeContext(world.clock))
    body = expect_failed(world.capture.responses(world.last_path), "Malformed CloudFormation request", "StackId")
    assert body["RequestId"] == event["RequestId"]


def test_unknown_request_type_fails_cleanly(world: World) -> None:
    expect_failed(world.invoke("Replace"), "RequestType (Create, Update or Delete)")


def test_event_without_response_url_is_logged_not_raised(world: World) -> None:
    app.handler({"RequestType": "Create"}, FakeContext(world.clock))
    app.handler("not an event", FakeContext(world.clock))


def test_timer_firing_mid_request_still_yields_exactly_one_response(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = app.lifecycle.run

    def restore_while_timer_fires(*args: Any, **kwargs: Any) -> Any:
        app.helper._timeout()  # crhelper's guard fires (remaining time - 0.5 s) while the call runs
        return original(*args, **kwargs)

    monkeypatch.setattr(app.lifecycle, "run", restore_while_timer_fires)
    world.describe(backup("READY"))
    body = expect_failed(world.invoke("Create"), "Execution timed out")
    assert body["PhysicalResourceId"].startswith("create-failed-")


def test_fifty_maximal_tags_fit_in_4096_bytes(world: World) -> None:
    tags = [{"Key": f"{i:02d}" + "k" * 126, "Value": "v" * 256} for i in range(50)]
    world.describe(backup("READY", TagList=tags))
    responses = world.invoke("Create", LogicalResourceId="R" * 255)
    body = expect_success(responses)
    assert body_size(body) <= 4096
    assert len(world.capture.bodies[world.last_path][0]) <= 4096
    assert body["Data"]["TagsTruncated"] == "true"
    assert body["Data"]["ClusterId"] == "cluster-abcdefghijk"


def test_long_reasons_keep_their_head(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.error("restore_backup", "CloudHsmServiceException", message="x" * 600)
    body = expect_failed(world.invoke("Create"), f"CloudHSM RestoreBackup failed for {BACKUP_ID} in us-east-1")
    assert body["Reason"].endswith("...")


def test_logs_are_json_at_info_and_never_contain_the_response_url(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    world.protect()
    event = world.event("Create")
    app.handler(event, FakeContext(world.clock))
    expect_success(world.capture.responses(world.last_path))
    signature = event["ResponseURL"].split("X-Amz-Signature=")[1]
    emitted = [record for record in caplog.records if record.levelno >= logging.getLogger().level]
    assert emitted
    for record in emitted:
        assert signature not in record.getMessage()
        assert "X-Amz-Signature" not in record.getMessage()
    assert logging.getLogger().level == logging.INFO
    output = capsys.readouterr()
    assert signature not in output.out + output.err
    structured = [json.loads(r.getMessage()) for r in emitted if r.getMessage().startswith("{")]
    actions = [entry["action"] for entry in structured]
    assert actions[0] == "request"
    assert actions[-1] == "response.sent"
