"""The simulator's own mechanics: events, the HTTPS ResponseURL, response checks, the Lambda runtime."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3
import pytest
from cloudhsm_offline.cfn import checks
from cloudhsm_offline.cfn.outcome import cfn_string
from cloudhsm_offline.cfn.response_server import ResponseServer

from tests.functional.conftest import WorldFactory, assert_clean

STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/" + str(uuid.uuid4())


def _event(request_type: str = "Create", **extra: Any) -> dict[str, Any]:
    event = {
        "RequestType": request_type,
        "StackId": STACK,
        "RequestId": "req-1",
        "LogicalResourceId": "Res",
        "ResourceProperties": {},
    }
    event.update(extra)
    return event


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Status": "SUCCESS",
        "PhysicalResourceId": "phys",
        "StackId": STACK,
        "RequestId": "req-1",
        "LogicalResourceId": "Res",
        "Data": {"A": "b"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


# -- pure checks -------------------------------------------------------------------------------


def test_cfn_string_converts_scalars_and_keeps_shapes() -> None:
    converted = cfn_string({"N": 3600, "F": 1.5, "B": True, "b": False, "S": "x", "L": [1, {"k": True}]})
    assert converted == {"N": "3600", "F": "1.5", "B": "true", "b": "false", "S": "x", "L": ["1", {"k": "true"}]}


def test_a_good_response_has_no_violations() -> None:
    body, violations = checks.check_body(_event(), json.dumps(_body()).encode())
    assert violations == []
    assert body is not None
    assert body["PhysicalResourceId"] == "phys"


@pytest.mark.parametrize(
    ("event", "body", "code"),
    [
        (_event(), _body(Status="OK"), "status"),
        (_event(), _body(Status="FAILED"), "reason-missing"),
        (_event(), _body(Status="FAILED", Reason="  "), "reason-missing"),
        (_event(), _body(PhysicalResourceId=""), "physical-id-missing"),
        (_event(), _body(PhysicalResourceId=None), "physical-id-missing"),
        (_event(), _body(PhysicalResourceId="é" * 513), "physical-id-too-long"),
        (
            _event("Delete", PhysicalResourceId="phys"),
            _body(PhysicalResourceId="other"),
            "physical-id-changed-on-delete",
        ),
        (_event(), _body(StackId="arn:other"), "echo-mismatch"),
        (_event(), _body(RequestId="req-2"), "echo-mismatch"),
        (_event(), _body(LogicalResourceId="Other"), "echo-mismatch"),
        (_event(), _body(Data=["a"]), "data-not-object"),
        (_event(), _body(Data={"Tags": {"a": "b"}}), "data-nested"),
        (_event(), _body(Data={"Count": 3}), "data-not-string"),
        (_event(), _body(Data={"Big": "x" * 5000}), "body-too-long"),
        (_event(), _body(NoEcho="yes"), "noecho-type"),
    ],
)
def test_each_violation_is_caught(event: dict[str, Any], body: dict[str, Any], code: str) -> None:
    _, violations = checks.check_body(event, json.dumps(body).encode())
    assert code in [v.code for v in violations]


def test_not_json_is_an_invalid_response_object() -> None:
    body, violations = checks.check_body(_event(), b"<html>")
    assert body is None
    assert [v.code for v in violations] == ["invalid-json"]


def test_the_size_limit_counts_bytes_of_the_whole_body() -> None:
    body = _body(Data={"A": ""})
    room = checks.MAX_BODY_BYTES - len(json.dumps(body).encode())
    exact = _body(Data={"A": "x" * room})
    assert checks.check_body(_event(), json.dumps(exact).encode())[1] == []
    over = _body(Data={"A": "x" * (room + 1)})
    assert [v.code for v in checks.check_body(_event(), json.dumps(over).encode())[1]] == ["body-too-long"]


def test_timeout_message_names_the_request() -> None:
    message = checks.timeout_message("abc-123")
    assert message.startswith("CloudFormation did not receive a response from your Custom Resource.")
    assert "[abc-123]" in message


# -- the ResponseURL endpoint ------------------------------------------------------------------


def test_response_url_is_presigned_https_and_needs_the_offline_ca() -> None:
    with ResponseServer() as server:
        url = server.mint(STACK, "req-1")
        assert url.startswith("https://127.0.0.1:")
        assert "/cloudformation-custom-resource-response/" in url
        for part in ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Expires=7200", "X-Amz-SignedHeaders=host"):
            assert part in url
        signature = url.rsplit("X-Amz-Signature=", 1)[1]
        assert len(signature) == 64
        assert server.secrets == [signature]
        body = json.dumps(_body()).encode()

        with pytest.raises(urllib.error.URLError) as untrusted:
            urllib.request.urlopen(urllib.request.Request(url, body, method="PUT"), timeout=5)
        assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)

        offline_ca = ssl.create_default_context(cafile=server.ca_bundle)
        request = urllib.request.Request(url, body, method="PUT", headers={"Content-Type": ""})
        with urllib.request.urlopen(request, context=offline_ca, timeout=5) as response:
            assert response.status == 200
        (received,) = server.responses("req-1")
        assert received.raw == body
        assert received.parsed["Status"] == "SUCCESS"

        tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
        with pytest.raises(urllib.error.HTTPError) as forbidden:
            urllib.request.urlopen(urllib.request.Request(tampered, body, method="PUT"), context=offline_ca, timeout=5)
        assert forbidden.value.code == 403
        assert len(server.responses()) == 1


# -- events as CloudFormation sends them -------------------------------------------------------


def test_events_have_cloudformation_shape_and_string_properties(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    sim = world.simulator
    created = sim.create("Res", {"Mode": "ok", "Seconds": 3600, "Flag": True, "List": [1, False]}, service_timeout=120)
    assert created.ok, created.summary()
    updated = sim.update("Res", {"Mode": "ok", "Seconds": 60})
    deleted = sim.delete("Res")
    assert updated.ok
    assert deleted.ok

    create_event, update_event, delete_event = (r.event for r in world.function.records)
    assert next(iter(create_event["ResourceProperties"])) == "ServiceToken"
    assert create_event["ResourceProperties"] == {
        "ServiceToken": world.function.arn,
        "Mode": "ok",
        "Seconds": "3600",
        "Flag": "true",
        "List": ["1", "false"],
        "ServiceTimeout": "120",
    }
    assert json.loads(created.data["Props"]) == create_event["ResourceProperties"]
    assert create_event["ServiceToken"] == world.function.arn
    assert create_event["ResourceType"] == "Custom::CloudHsmBackupRestore"
    assert create_event["StackId"].startswith("arn:aws:cloudformation:us-east-1:123456789012:stack/offline-stack/")
    uuid.UUID(create_event["RequestId"])
    assert "PhysicalResourceId" not in create_event
    assert "OldResourceProperties" not in create_event
    assert update_event["PhysicalResourceId"] == "phys-1"
    assert update_event["OldResourceProperties"]["Seconds"] == "3600"
    assert update_event["ResourceProperties"]["Seconds"] == "60"
    assert delete_event["PhysicalResourceId"] == "phys-1"
    assert "OldResourceProperties" not in delete_event
    assert len({e["RequestId"] for e in (create_event, update_event, delete_event)}) == 3
    assert len({e["ResponseURL"] for e in (create_event, update_event, delete_event)}) == 3
    assert_clean(world)


# -- the Lambda runtime ------------------------------------------------------------------------


def test_context_clock_and_logs_in_the_worker(fixture_world: WorldFactory) -> None:
    world = fixture_world(lambda_timeout=120, env={"FIXTURE_ENV": "set"})
    first = world.simulator.create("A", {"Mode": "ok"})
    second = world.simulator.create("B", {"Mode": "ok"})
    assert first.ok
    assert second.ok
    cold, warm = world.function.records
    assert cold.cold
    assert cold.init_seconds is not None
    assert not warm.cold
    assert warm.worker_pid == cold.worker_pid
    remaining = int(second.data["Remaining"])
    assert 100_000 < remaining <= 120_000
    assert float(second.data["Now"]) == world.clock.now()  # the worker's time.time() is the virtual clock
    assert second.data["FunctionName"] == world.function.function_name
    assert second.data["Env"] == "set"
    streams = {line.stream for line in warm.logs}
    assert streams == {"platform", "stdout", "stderr"}
    texts = [line.text for line in warm.logs]
    assert texts[0] == f"START RequestId: {warm.request_id} Version: $LATEST"
    assert texts[-2] == f"END RequestId: {warm.request_id}"
    assert texts[-1].startswith(f"REPORT RequestId: {warm.request_id}\tDuration: ")
    assert "to stderr" in texts
    assert any('"cold": false' in t for t in texts)
    assert_clean(world)


def test_a_sleep_in_the_worker_is_modelled_time_and_compute_is_none(fixture_world: WorldFactory) -> None:
    world = fixture_world(lambda_timeout=300)
    outcome = world.simulator.create("Res", {"Mode": "sleep", "Seconds": 120})
    assert outcome.ok, outcome.summary()
    # Virtual time: the cold start, the imports and the HTTP calls take no modelled time, the sleep all of it.
    assert outcome.elapsed_modelled == 120
    (record,) = world.function.records
    assert record.modelled_seconds == 120


def test_timeout_kills_the_worker_and_the_operation_times_out(fixture_world: WorldFactory) -> None:
    world = fixture_world(lambda_timeout=30, async_retry_delays=(5,))
    outcome = world.simulator.create("Res", {"Mode": "sleep", "Seconds": 600}, service_timeout=300, rollback=False)
    assert outcome.status == "FAILED"
    assert outcome.timed_out
    assert outcome.reason == checks.timeout_message(outcome.request_id)
    first, retry = world.function.records
    assert first.timed_out
    assert retry.timed_out
    assert first.error == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 30.00 seconds"}
    assert retry.cold
    assert retry.worker_pid != first.worker_pid
    assert retry.attempt == 2
    assert any("Task timed out after 30.00 seconds" in line.text for line in first.logs)
    assert first.modelled_seconds == 30
    assert retry.start_modelled - (first.end_modelled or 0) == 5  # the async retry delay
    assert outcome.elapsed_modelled == 300


def test_concurrent_invocations_get_separate_workers(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    event = world.simulator.build_event("Create", "Res", {"Mode": "sleep", "Seconds": 30})
    invocations = [world.function.invoke_async(dict(event)) for _ in range(2)]
    assert all(invocation.wait(10) for invocation in invocations)
    records = [invocation.record for invocation in invocations]
    assert all(record is not None and record.cold for record in records)
    assert len({record.worker_pid for record in records if record}) == 2


def test_max_concurrency_queues_invocations(fixture_world: WorldFactory) -> None:
    world = fixture_world(max_concurrency=1)
    event = world.simulator.build_event("Create", "Res", {"Mode": "sleep", "Seconds": 30})
    invocations = [world.function.invoke_async(dict(event)) for _ in range(2)]
    assert all(invocation.wait(10) for invocation in invocations)
    first, second = sorted((i.record for i in invocations if i.record), key=lambda r: r.start_modelled)
    assert second.start_modelled == first.end_modelled == first.start_modelled + 30  # queued behind the first
    assert not second.cold


def test_an_import_error_is_an_init_failure_and_the_operation_times_out(fixture_world: WorldFactory) -> None:
    world = fixture_world(handler="broken_module.handler", async_retry_delays=())
    outcome = world.simulator.create("Res", {}, service_timeout=60, rollback=False)
    assert outcome.timed_out
    (record,) = world.function.records
    assert record.error is not None
    assert record.error["errorType"] == "Runtime.ImportModuleError"
    assert "crhelper_that_is_not_packaged" in record.log_text()


def test_the_worker_sees_only_the_code_dir_and_the_runtime(fixture_world: WorldFactory) -> None:
    world = fixture_world(handler="polling_handler.handler", async_retry_delays=())
    outcome = world.simulator.create("Res", {}, service_timeout=60, rollback=False)
    assert outcome.timed_out  # crhelper is not in the code dir and no layer was given
    assert "No module named 'crhelper'" in world.function.log_text()


def test_secrets_in_logs_are_detected(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    event = world.simulator.build_event("Create", "Res", {"Mode": "ok"})
    record = world.function.invoke(event)
    assert record.error is None
    world.function.log(record, "stdout", "oops " + event["ResponseURL"])
    assert len(world.leaked_secrets()) == 1
    assert "secret-in-logs" in [v.code for v in world.verify()]


def test_the_scheduler_fires_rules_past_the_first_list_rules_page_on_modelled_time(
    fixture_world: WorldFactory,
) -> None:
    world = fixture_world()
    bridge = world.eventbridge
    assert bridge is not None
    events = boto3.client(
        "events",
        region_name=world.region,
        endpoint_url=bridge.url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    for number in range(60):  # ListRules answers 50 per page
        events.put_rule(Name=f"cloudhsm-poll-x-r{number}", ScheduleExpression="rate(1 minute)")
    started = world.clock.now()

    # The rules stay (nothing deletes them): waiting on them lets 90 modelled seconds pass, one firing each.
    assert not bridge.wait_quiet(within=90)

    assert world.clock.now() - started == 90
    assert [rule.name for rule in bridge.rules.values() if rule.removed is not None] == []
    assert sorted(f.rule for f in bridge.firings) == sorted(f"cloudhsm-poll-x-r{n}" for n in range(60))
    assert {f.modelled - started for f in bridge.firings} == {60.0}
