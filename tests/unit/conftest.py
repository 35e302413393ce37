"""Unit harness: the real handler module, CloudHSM and EventBridge/Lambda clients under botocore Stubbers,
an injected clock, and a real HTTPS ResponseURL whose received bodies the tests assert on.

GIVEN a stubbed CloudHSM, WHEN ``invoke(RequestType, **overrides)`` runs ``app.handler``, THEN
``expect_success`` / ``expect_failed`` check the one body CloudFormation would have received.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_CA_DIR = Path(tempfile.mkdtemp(prefix="cfn-ca-"))
_CA_PATH = _CA_DIR / "ca.pem"
os.environ.update(
    {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CA_BUNDLE": str(_CA_PATH),
    }
)
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402
from botocore.stub import Stubber  # noqa: E402

from tests.support.https_capture import ResponseCapture  # noqa: E402

_CAPTURE = ResponseCapture(_CA_PATH)  # before the handler import: crhelper reads AWS_CA_BUNDLE then

from cloudhsm_backup_restore import app, polling  # noqa: E402
from cloudhsm_backup_restore.backups import CloudHsmBackups, cloudhsm_client  # noqa: E402
from cloudhsm_backup_restore.ownership import Resource  # noqa: E402
from cloudhsm_backup_restore.polling import PROVIDER_ID_ENV  # noqa: E402

BACKUP_ID = "backup-abcdefghijk"
OTHER_BACKUP_ID = "backup-zyxwvutsrqp"
BACKUP_ARN = f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{BACKUP_ID}"
OTHER_ARN = f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{OTHER_BACKUP_ID}"
OWNER_KEY = "cloudhsm-backup-restore:owner"
PROVIDER_ID = "0a1b2c3d4e5f"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/unit/0f0e0d0c-0000-1111-2222-333344445555"
RULE = polling.rule_name(PROVIDER_ID, STACK_ID, "RestoredBackup")
"""The one poll rule of the resource RestoredBackup in the unit stack."""
RULE_ARN = f"arn:aws:events:us-east-1:123456789012:rule/{RULE}"
PARAMETER = f"/cloudhsm-restore/{PROVIDER_ID}/{RULE}"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:cloudhsm-backup-restore"


class FakeClock:
    """Injected time: sleep() advances now() instead of waiting."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@dataclass
class FakeContext:
    """The slice of the Lambda context crhelper and the handler read; remaining time follows the clock."""

    clock: FakeClock
    timeout: float = 300.0
    function_name: str = "cloudhsm-backup-restore"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock.now()

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.started + self.timeout - self.clock.now()) * 1000)


def backup(state: str = "READY", backup_id: str = BACKUP_ID, **extra: Any) -> dict[str, Any]:
    """A Backup as DescribeBackups returns it."""
    from datetime import UTC, datetime

    shape: dict[str, Any] = {
        "BackupId": backup_id,
        "BackupArn": f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{backup_id}",
        "BackupState": state,
        "ClusterId": "cluster-abcdefghijk",
        "CreateTimestamp": datetime(2026, 11, 1, 12, 30, tzinfo=UTC),
        "NeverExpires": False,
        "HsmType": "hsm2m.medium",
        "Mode": "FIPS",
        "TagList": [{"Key": "Environment", "Value": "prod"}],
    }
    if state == "PENDING_DELETION":
        shape["DeleteTimestamp"] = datetime(2026, 11, 20, tzinfo=UTC)
    shape.update(extra)
    return shape


@dataclass
class World:
    """One test's handler world: stubs, clock, and the responses CloudFormation received."""

    cloudhsm: Stubber
    events: Stubber
    lambda_: Stubber
    ssm: Stubber
    clock: FakeClock
    capture: ResponseCapture
    last_path: str = ""
    last_url: str = ""

    def describe(self, result: dict[str, Any] | None, backup_id: str = BACKUP_ID) -> None:
        self.cloudhsm.add_response(
            "describe_backups",
            {"Backups": [result] if result else []},
            {"Filters": {"backupIds": [backup_id]}},
        )

    def restore(self, result: dict[str, Any], backup_id: str = BACKUP_ID) -> None:
        self.cloudhsm.add_response("restore_backup", {"Backup": result}, {"BackupId": backup_id})

    def restored(self, result: dict[str, Any], backup_id: str = BACKUP_ID) -> None:
        """RestoreBackup answered with ``result``, then the ownership record written (TagResource); a restore
        still under way is protected at once (ModifyBackupAttributes NeverExpires=true, same state)."""
        self.restore(result, backup_id)
        self.tag(backup_id)
        if result["BackupState"] != "READY":
            self.cloudhsm.add_response(
                "modify_backup_attributes",
                {"Backup": dict(result, NeverExpires=True)},
                {"BackupId": backup_id, "NeverExpires": True},
            )

    def tag(self, backup_id: str = BACKUP_ID, value: Any = None) -> None:
        """TagResource writing the ownership record (any value unless given)."""
        from botocore.stub import ANY

        tag = {"Key": OWNER_KEY, "Value": ANY if value is None else value}
        self.cloudhsm.add_response("tag_resource", {}, {"ResourceId": backup_id, "TagList": [tag]})

    def protect(self, backup_id: str = BACKUP_ID, **extra: Any) -> None:
        """ModifyBackupAttributes(NeverExpires=true) after a restore; answers READY and protected."""
        self.cloudhsm.add_response(
            "modify_backup_attributes",
            {"Backup": backup("READY", backup_id=backup_id, NeverExpires=True, **extra)},
            {"BackupId": backup_id, "NeverExpires": True},
        )

    def error(self, operation: str, code: str, status: int = 400, message: str = "boom") -> None:
        self.cloudhsm.add_client_error(
            operation, service_error_code=code, service_message=message, http_status_code=status
        )

    def event(self, request_type: str, **overrides: Any) -> dict[str, Any]:
        """A CloudFormation event as the service sends it (properties as strings)."""
        self.last_url, self.last_path = self.capture.url()
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:cloudhsm-backup-restore",
            "ResponseURL": self.last_url,
            "StackId": STACK_ID,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "RestoredBackup",
            "ResourceType": "Custom::CloudHsmBackupRestore",
            "ResourceProperties": {
                "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:cloudhsm-backup-restore",
                "BackupId": BACKUP_ID,
            },
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = BACKUP_ARN
        if request_type == "Update":
            event["OldResourceProperties"] = dict(event["ResourceProperties"])
        event.update(overrides)
        return event

    def no_wait(self) -> None:
        """A Delete first ends its resource's wait: here there is none (parameter, target and rule not found)."""
        self.ssm.add_client_error("delete_parameter", service_error_code="ParameterNotFound", expected_params=None)
        self.events.add_client_error("remove_targets", service_error_code="ResourceNotFoundException")
        self.events.add_client_error("delete_rule", service_error_code="ResourceNotFoundException")

    def invoke(self, request_type: str, timeout: float = 300.0, **overrides: Any) -> list[dict[str, Any]]:
        """Run the real handler on one event (a Delete finding no wait to end); return every body PUT to its URL."""
        event = overrides.pop("event", None) or self.event(request_type, **overrides)
        if event["RequestType"] == "Delete":
            self.no_wait()
        app.handler(event, FakeContext(self.clock, timeout=timeout))
        return self.capture.responses(self.last_path)


def record_of(*resources: Resource, verb: str = "owner") -> str:
    """The ownership record naming ``resources`` (owner first), labelled with the first."""
    return "+".join(r.token for r in resources) + f" {verb} {resources[0].label}"


def expect_success(responses: list[dict[str, Any]], physical_id: str = BACKUP_ARN) -> dict[str, Any]:
    """Exactly one SUCCESS body with this PhysicalResourceId; returns it."""
    assert len(responses) == 1, responses
    body = responses[0]
    assert body["Status"] == "SUCCESS", body.get("Reason")
    assert body["PhysicalResourceId"] == physical_id
    return body


def expect_failed(responses: list[dict[str, Any]], *reason_parts: str) -> dict[str, Any]:
    """Exactly one FAILED body, non-empty PhysicalResourceId, Reason containing every part; returns it."""
    assert len(responses) == 1, responses
    body = responses[0]
    assert body["Status"] == "FAILED"
    assert body["PhysicalResourceId"]
    assert len(body["Reason"]) <= 256
    for part in reason_parts:
        assert part in body["Reason"], body["Reason"]
    return body


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    clock = FakeClock()
    client = cloudhsm_client("us-east-1")
    polling_clients = {
        service: boto3.client(service, region_name="us-east-1") for service in ("events", "lambda", "ssm")
    }
    with (
        Stubber(client) as cloudhsm,
        Stubber(polling_clients["events"]) as events,
        Stubber(polling_clients["lambda"]) as lambda_,
        Stubber(polling_clients["ssm"]) as ssm,
    ):
        monkeypatch.setenv(PROVIDER_ID_ENV, PROVIDER_ID)
        monkeypatch.setattr(app.helper.polling, "_clients", polling_clients)
        monkeypatch.setattr(app.helper.polling, "now", clock.now)
        monkeypatch.setattr(
            app.lifecycle,
            "backups_for",
            lambda region: CloudHsmBackups(client, region or "us-east-1", sleep=clock.sleep),
        )
        monkeypatch.setattr(app.lifecycle, "now", clock.now)
        monkeypatch.setattr(app.lifecycle, "sleep", clock.sleep)
        yield World(cloudhsm, events, lambda_, ssm, clock, _CAPTURE)
        ssm.assert_no_pending_responses()
        cloudhsm.assert_no_pending_responses()
        events.assert_no_pending_responses()
        lambda_.assert_no_pending_responses()
