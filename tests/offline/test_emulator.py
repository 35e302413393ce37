"""The CloudHSM v2 emulator as a boto3 user sees it: real clients over HTTP, endpoint from the environment.

GIVEN an emulator on its own port (seeded in code or from a file), WHEN a boto3 client built only from
AWS_ENDPOINT_URL_CLOUDHSM_V2, fake credentials and a region calls it, THEN the responses, exceptions and
the emulator's call record are what CloudHSM would give. Time moves with ``advance()``, never by sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.endpoint
import botocore.session
import cbor2
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError
from cloudhsm_offline.clock import SimClock
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.emulator import CloudHsmEmulator
from cloudhsm_offline.emulator.seed import DEMO_SEED, load_seed
from cloudhsm_offline.faults import CLOUDHSM_KINDS, GATEWAY_KINDS, FaultPlan
from cloudhsm_offline.loopback import LoopbackServer

from tests.offline.conftest import T0, ClientFactory, ManualClock

if TYPE_CHECKING:
    from mypy_boto3_cloudhsmv2 import CloudHSMV2Client

PENDING = "backup-pendingdelete"
READY = "backup-readybackupxx"
OTHER = "backup-otherbackupxx"
CLUSTER = "cluster-clusteroneabc"
OTHER_CLUSTER = "cluster-clustertwoabc"
WEEK = 7 * 24 * 3600.0
ROOT = Path(__file__).resolve().parents[2]


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def ids(response: Any) -> list[str]:
    return [b["BackupId"] for b in response["Backups"]]


def admin(emulator: CloudHsmEmulator, path: str, body: Any = None) -> tuple[int, Any]:
    """Call the admin surface the way another process would."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emulator.url + path, data=data, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# -- wire protocol and endpoint -----------------------------------------------------------------


def test_boto3_reaches_the_emulator_through_the_environment_variable_alone(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    emulator.account.add_backup(PENDING, cluster_id=CLUSTER)
    assert os.environ["AWS_ENDPOINT_URL_CLOUDHSM_V2"] == emulator.url
    assert client.meta.endpoint_url == emulator.url
    response = client.describe_backups()
    assert ids(response) == [PENDING]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert emulator.count("DescribeBackups") == 1


def test_the_protocol_botocore_resolves_is_the_one_served(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    resolved = client.meta.service_model.resolved_protocol
    client.describe_backups()
    assert resolved in ("json", "smithy-rpc-v2-cbor")
    assert [c.protocol for c in emulator.calls] == [resolved]


@pytest.fixture
def cbor_client(emulator: CloudHsmEmulator, aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A real botocore client forced onto RPC v2 CBOR through a service model that lists only that protocol."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDHSM_V2", emulator.url)
    session = botocore.session.Session()
    loader = session.get_component("data_loader")
    model = loader.load_service_model("cloudhsmv2", "service-2")
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    folder = tmp_path / "models" / "cloudhsmv2" / model["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    loader.search_paths.insert(0, str(tmp_path / "models"))
    config = Config(retries={"mode": "standard", "total_max_attempts": 1})
    return boto3.session.Session(botocore_session=session).client("cloudhsmv2", config=config)


def test_botocore_forced_onto_rpc_v2_cbor_gets_the_same_answers(
    emulator: CloudHsmEmulator, cbor_client: Any, clock: ManualClock
) -> None:
    emulator.account.add_backup(PENDING, cluster_id=CLUSTER, tags={"Env": "prod"}, create_timestamp=T0 - 3600)
    assert cbor_client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    restored = cbor_client.restore_backup(BackupId=PENDING)["Backup"]
    assert restored["BackupState"] == "READY"
    assert restored["CreateTimestamp"] == datetime.fromtimestamp(T0 - 3600, tz=UTC)
    assert restored["TagList"] == [{"Key": "Env", "Value": "prod"}]
    with pytest.raises(cbor_client.exceptions.CloudHsmInvalidRequestException, match="READY"):
        cbor_client.restore_backup(BackupId=PENDING)
    with pytest.raises(cbor_client.exceptions.CloudHsmResourceNotFoundException):
        cbor_client.delete_backup(BackupId=OTHER)
    assert {c.protocol for c in emulator.calls} == {"smithy-rpc-v2-cbor"}


def _raw_cbor(emulator: CloudHsmEmulator, operation: str, params: dict[str, Any], **headers: str) -> Any:
    request = urllib.request.Request(
        f"{emulator.url}/service/BaldrApiService/operation/{operation}",
        data=cbor2.dumps(params),
        method="POST",
        headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), cbor2.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), cbor2.loads(error.read())


SIGV4 = "AWS4-HMAC-SHA256 Credential=AKIAEMULATORTEST/20260101/us-east-1/cloudhsm/aws4_request, Signature=x"


def test_raw_rpc_v2_cbor_request_gets_cbor_with_epoch_timestamps(emulator: CloudHsmEmulator) -> None:
    emulator.account.add_backup(PENDING, create_timestamp=T0)
    status, headers, body = _raw_cbor(emulator, "DescribeBackups", {"MaxResults": 5}, Authorization=SIGV4)
    assert status == 200
    assert headers["smithy-protocol"] == "rpc-v2-cbor"
    assert headers["Content-Type"] == "application/cbor"
    assert body["Backups"][0]["BackupId"] == PENDING
    assert body["Backups"][0]["CreateTimestamp"] == datetime.fromtimestamp(T0, tz=UTC)  # CBOR tag 1

    status, _, error = _raw_cbor(emulator, "RestoreBackup", {"BackupId": "nope"}, Authorization=SIGV4)
    assert (status, error["__type"]) == (400, "CloudHsmInvalidRequestException")


def test_unsigned_requests_and_requests_signed_for_another_region_are_refused(
    emulator: CloudHsmEmulator, make_client: ClientFactory
) -> None:
    status, _, error = _raw_cbor(emulator, "DescribeBackups", {})
    assert (status, error["__type"]) == (403, "MissingAuthenticationTokenException")
    with pytest.raises(ClientError) as exc:
        make_client(region="eu-west-1").describe_backups()
    assert error_code(exc) == "InvalidSignatureException"
    assert "valid region" in str(exc.value)


def test_an_operation_the_emulator_does_not_implement_is_an_unknown_operation(client: CloudHSMV2Client) -> None:
    with pytest.raises(ClientError) as exc:
        client.delete_cluster(ClusterId="cluster-abcdefghijk")
    assert error_code(exc) == "UnknownOperationException"


# -- DescribeBackups ------------------------------------------------------------------------------


def _seed_mixed(emulator: CloudHsmEmulator) -> None:
    emulator.account.add_backup(PENDING, cluster_id=CLUSTER, create_timestamp=T0 - 300)
    emulator.account.add_backup(READY, state="READY", cluster_id=CLUSTER, never_expires=True, create_timestamp=T0 - 200)
    emulator.account.add_backup(
        OTHER, state="READY", cluster_id=OTHER_CLUSTER, source_backup=READY, create_timestamp=T0 - 100
    )


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"backupIds": [READY, "backup-doesnotexist"]}, [READY]),
        ({"states": ["PENDING_DELETION"]}, [PENDING]),
        ({"states": ["READY", "PENDING_DELETION"]}, [OTHER, READY, PENDING]),
        ({"clusterIds": [OTHER_CLUSTER]}, [OTHER]),
        ({"clusterIds": [CLUSTER], "states": ["READY"]}, [READY]),
        ({"neverExpires": ["true"]}, [READY]),
        ({"sourceBackupIds": [READY]}, [OTHER]),
        ({"backupIds": ["backup-doesnotexist"]}, []),
    ],
)
def test_describe_filters(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, filters: dict[str, list[str]], expected: list[str]
) -> None:
    _seed_mixed(emulator)
    assert ids(client.describe_backups(Filters=filters)) == expected


def test_describe_sorts_newest_first_unless_sort_ascending(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    _seed_mixed(emulator)
    assert ids(client.describe_backups()) == [OTHER, READY, PENDING]
    assert ids(client.describe_backups(SortAscending=True)) == [PENDING, READY, OTHER]


def _page_id(n: int) -> str:
    return f"backup-pagebackup{chr(97 + n // 26)}{chr(97 + n % 26)}"


def test_describe_paginates_with_next_token_and_max_results(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    for n in range(7):
        emulator.account.add_backup(_page_id(n), state="READY", create_timestamp=T0 + n)
    pages: list[list[str]] = []
    kwargs: dict[str, Any] = {"MaxResults": 3, "SortAscending": True}
    while True:
        response = client.describe_backups(**kwargs)
        pages.append(ids(response))
        if "NextToken" not in response:
            break
        kwargs["NextToken"] = response["NextToken"]
    assert pages == [[_page_id(n) for n in range(3)], [_page_id(n) for n in range(3, 6)], [_page_id(6)]]

    paginated = client.get_paginator("describe_backups").paginate(PaginationConfig={"PageSize": 2})
    assert sum(len(page["Backups"]) for page in paginated) == 7
    assert emulator.count("DescribeBackups", "ok") == 3 + 4


def test_default_page_is_fifty_backups(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    for n in range(52):
        emulator.account.add_backup(_page_id(n), state="READY", create_timestamp=T0 + n)
    first = client.describe_backups()
    assert len(first["Backups"]) == 50
    assert len(client.describe_backups(NextToken=first["NextToken"])["Backups"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"MaxResults": 51}, "maxResults"),
        ({"MaxResults": 0}, "maxResults"),
        ({"Filters": {"backupId": [READY]}}, "Invalid filter name: backupId"),
        ({"Filters": {"states": ["RESTORING"]}}, "RESTORING"),
        ({"Filters": {"neverExpires": ["maybe"]}}, "neverExpires"),
        ({"NextToken": "not-a-token"}, "NextToken"),
    ],
)
def test_describe_rejects_invalid_requests(
    emulator: CloudHsmEmulator, make_client: ClientFactory, kwargs: dict[str, Any], message: str
) -> None:
    client = make_client(parameter_validation=False)
    with pytest.raises(client.exceptions.CloudHsmInvalidRequestException, match=message):
        client.describe_backups(**kwargs)
    assert emulator.count("DescribeBackups", "CloudHsmInvalidRequestException") == 1


def test_a_next_token_only_fits_the_request_it_came_from(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    for n in range(3):
        emulator.account.add_backup(_page_id(n), state="READY")
    token = client.describe_backups(MaxResults=1)["NextToken"]
    with pytest.raises(client.exceptions.CloudHsmInvalidRequestException, match="NextToken"):
        client.describe_backups(MaxResults=1, NextToken=token, Filters={"states": ["READY"]})


def test_backup_shape_is_complete_and_omits_absent_members(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    emulator.account.add_backup(
        READY,
        state="READY",
        cluster_id=CLUSTER,
        tags=[{"Key": "Env", "Value": "prod"}, {"Key": "Team", "Value": "hsm"}],
        create_timestamp="2026-11-01T12:30:00Z",
        copy_timestamp=T0,
        source_region="eu-west-1",
        source_backup=OTHER,
        source_cluster=OTHER_CLUSTER,
        mode="NON_FIPS",
        hsm_type="hsm1.medium",
    )
    emulator.account.add_backup(PENDING)
    copied, pending = (client.describe_backups(Filters={"backupIds": [b]})["Backups"][0] for b in (READY, PENDING))
    assert copied == {
        "BackupId": READY,
        "BackupArn": f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{READY}",
        "BackupState": "READY",
        "ClusterId": CLUSTER,
        "CreateTimestamp": datetime(2026, 11, 1, 12, 30, tzinfo=UTC),
        "CopyTimestamp": datetime.fromtimestamp(T0, tz=UTC),
        "NeverExpires": False,
        "SourceRegion": "eu-west-1",
        "SourceBackup": OTHER,
        "SourceCluster": OTHER_CLUSTER,
        "TagList": [{"Key": "Env", "Value": "prod"}, {"Key": "Team", "Value": "hsm"}],
        "HsmType": "hsm1.medium",
        "Mode": "NON_FIPS",
    }
    assert set(pending) == {
        "BackupId",
        "BackupArn",
        "BackupState",
        "ClusterId",
        "CreateTimestamp",
        "NeverExpires",
        "DeleteTimestamp",
        "HsmType",
        "Mode",
    }
    assert pending["ClusterId"].startswith("cluster-")


# -- RestoreBackup, DeleteBackup, ModifyBackupAttributes and the state machine --------------------


def test_restore_with_zero_duration_answers_ready_at_once(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.account.add_backup(PENDING)
    backup = client.restore_backup(BackupId=PENDING)["Backup"]
    assert backup["BackupState"] == "READY"
    assert "DeleteTimestamp" not in backup
    assert emulator.account.backup(PENDING)["BackupState"] == "READY"


@pytest.mark.parametrize("in_progress", ["PENDING_DELETION", "CREATE_IN_PROGRESS"])
def test_restore_takes_its_modelled_time_then_reports_ready(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock, in_progress: str
) -> None:
    emulator.account.restore_seconds = 600
    emulator.account.restore_in_progress_state = in_progress
    emulator.account.add_backup(PENDING)
    started = client.restore_backup(BackupId=PENDING)["Backup"]
    assert started["BackupState"] == in_progress
    assert ("DeleteTimestamp" in started) is (in_progress == "PENDING_DELETION")
    clock.advance(599)
    assert ids(client.describe_backups(Filters={"states": [in_progress]})) == [PENDING]
    clock.advance(1)
    ready = client.describe_backups(Filters={"backupIds": [PENDING]})["Backups"][0]
    assert ready["BackupState"] == "READY"
    assert "DeleteTimestamp" not in ready


def test_the_standalone_sim_clock_runs_a_ten_minute_restore_in_compressed_real_time(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The standalone emulator has no world to drive a virtual clock: its SimClock is real time x speed.
    clock = SimClock(speed=6000)
    with CloudHsmEmulator(EmulatedAccount(clock, restore_seconds=600)) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDHSM_V2", emulator.url)
        client = boto3.client("cloudhsmv2")
        emulator.account.add_backup(PENDING)
        restored_at = clock.now()
        assert client.restore_backup(BackupId=PENDING)["Backup"]["BackupState"] == "PENDING_DELETION"
        state = "PENDING_DELETION"
        while state != "READY":  # READY once 600 modelled seconds passed, however long that takes in real time
            state = client.describe_backups(Filters={"backupIds": [PENDING]})["Backups"][0]["BackupState"]
            seen_at = clock.now()
    assert seen_at - restored_at >= 600  # read after the answer: READY was settled at 600 s or later


def test_each_backup_can_have_its_own_restore_duration(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock
) -> None:
    emulator.account.restore_seconds = 1000
    emulator.account.add_backup(PENDING, restore_seconds=10)
    emulator.account.add_backup(OTHER)
    client.restore_backup(BackupId=PENDING)
    client.restore_backup(BackupId=OTHER)
    clock.advance(10)
    assert ids(client.describe_backups(Filters={"states": ["READY"]})) == [PENDING]


def test_restore_again_while_restoring_keeps_the_original_finish_time(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock
) -> None:
    emulator.account.add_backup(PENDING, restore_seconds=60)
    client.restore_backup(BackupId=PENDING)
    clock.advance(50)
    again = client.restore_backup(BackupId=PENDING)["Backup"]
    assert again["BackupState"] == "PENDING_DELETION"
    clock.advance(10)
    assert emulator.account.backup(PENDING)["BackupState"] == "READY"


def test_restore_while_reporting_create_in_progress_is_refused(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    emulator.account.restore_in_progress_state = "CREATE_IN_PROGRESS"
    emulator.account.add_backup(PENDING, restore_seconds=60)
    client.restore_backup(BackupId=PENDING)
    with pytest.raises(client.exceptions.CloudHsmInvalidRequestException, match="CREATE_IN_PROGRESS"):
        client.restore_backup(BackupId=PENDING)


@pytest.mark.parametrize("state", ["READY", "DELETED", "CREATE_IN_PROGRESS"])
def test_restore_of_a_backup_not_pending_deletion_is_an_invalid_request(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, state: str
) -> None:
    emulator.account.add_backup(READY, state=state)
    with pytest.raises(client.exceptions.CloudHsmInvalidRequestException) as exc:
        client.restore_backup(BackupId=READY)
    assert f"is in state {state}" in exc.value.response["Error"]["Message"]
    assert "PENDING_DELETION" in exc.value.response["Error"]["Message"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_delete_puts_a_ready_backup_into_pending_deletion_until_seven_days_from_now(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock
) -> None:
    emulator.account.add_backup(READY, state="READY")
    deleted = client.delete_backup(BackupId=READY)["Backup"]
    assert deleted["BackupState"] == "PENDING_DELETION"
    # DeleteTimestamp: "when the backup will be permanently deleted" (API reference, Backup).
    assert deleted["DeleteTimestamp"] == datetime.fromtimestamp(T0, tz=UTC) + timedelta(days=7)
    with pytest.raises(client.exceptions.CloudHsmInvalidRequestException, match="only a READY backup"):
        client.delete_backup(BackupId=READY)
    clock.advance(3600)
    assert client.restore_backup(BackupId=READY)["Backup"]["BackupState"] == "READY"


def test_delete_timestamp_can_mean_the_deletion_time(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with CloudHsmEmulator(EmulatedAccount(ManualClock(), delete_timestamp_is_expiry=False)) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDHSM_V2", emulator.url)
        emulator.account.add_backup(READY, state="READY")
        deleted = boto3.client("cloudhsmv2").delete_backup(BackupId=READY)["Backup"]
    assert deleted["DeleteTimestamp"] == datetime.fromtimestamp(T0, tz=UTC)


def test_pending_deletion_becomes_deleted_after_seven_days(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock
) -> None:
    emulator.account.add_backup(PENDING)
    emulator.account.add_backup(OTHER, deleted_seconds_ago=WEEK - 60)
    clock.advance(WEEK - 1)
    assert ids(client.describe_backups(Filters={"states": ["PENDING_DELETION"]})) == [PENDING]
    assert ids(client.describe_backups(Filters={"states": ["DELETED"]})) == [OTHER]
    clock.advance(2)
    assert client.describe_backups(Filters={"backupIds": [PENDING]})["Backups"][0]["BackupState"] == "DELETED"
    with pytest.raises(client.exceptions.CloudHsmInvalidRequestException, match="DELETED"):
        client.restore_backup(BackupId=PENDING)
    with pytest.raises(client.exceptions.CloudHsmInvalidRequestException, match="DELETED"):
        client.modify_backup_attributes(BackupId=PENDING, NeverExpires=True)


def test_modify_sets_never_expires(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.account.add_backup(PENDING)
    assert client.modify_backup_attributes(BackupId=PENDING, NeverExpires=True)["Backup"]["NeverExpires"] is True
    assert client.describe_backups(Filters={"neverExpires": ["true"]})["Backups"][0]["BackupId"] == PENDING
    assert client.modify_backup_attributes(BackupId=PENDING, NeverExpires=False)["Backup"]["NeverExpires"] is False


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("restore_backup", {}),
        ("delete_backup", {}),
        ("modify_backup_attributes", {"NeverExpires": True}),
    ],
)
def test_unknown_backup_is_resource_not_found(client: CloudHSMV2Client, operation: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(client.exceptions.CloudHsmResourceNotFoundException, match="backup-nosuchbackupx"):
        getattr(client, operation)(BackupId="backup-nosuchbackupx", **kwargs)


@pytest.mark.parametrize(
    ("operation", "kwargs", "message"),
    [
        ("restore_backup", {"BackupId": "backup-1234"}, "regular expression pattern"),
        ("delete_backup", {"BackupId": "cluster-abcdefghijk"}, "regular expression pattern"),
        ("restore_backup", {}, "BackupId is required"),
        ("modify_backup_attributes", {"BackupId": PENDING}, "NeverExpires is required"),
        ("modify_backup_attributes", {"BackupId": PENDING, "NeverExpires": "yes"}, "boolean"),
    ],
)
def test_malformed_requests_are_invalid_requests(
    emulator: CloudHsmEmulator, make_client: ClientFactory, operation: str, kwargs: dict[str, Any], message: str
) -> None:
    emulator.account.add_backup(PENDING)
    client = make_client(parameter_validation=False)
    with pytest.raises(client.exceptions.CloudHsmInvalidRequestException, match=message):
        getattr(client, operation)(**kwargs)
    assert emulator.account.backup(PENDING)["BackupState"] == "PENDING_DELETION"


# -- faults ---------------------------------------------------------------------------------------


def test_throttled_calls_are_retried_by_boto3_then_succeed(
    emulator: CloudHsmEmulator, make_client: ClientFactory, backoffs: list[float]
) -> None:
    emulator.account.add_backup(PENDING)
    emulator.faults.throttle_next(2)
    response = make_client(attempts=3).restore_backup(BackupId=PENDING)
    assert response["Backup"]["BackupState"] == "READY"
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(backoffs) == 2
    assert emulator.count("RestoreBackup", "ThrottlingException") == 2
    assert emulator.count("RestoreBackup", "ok") == 1


def test_throttling_beyond_the_retry_budget_reaches_the_caller(
    emulator: CloudHsmEmulator, make_client: ClientFactory, backoffs: list[float]
) -> None:
    emulator.faults.throttle_next(5)
    with pytest.raises(ClientError) as exc:
        make_client(attempts=2).describe_backups()
    assert error_code(exc) == "ThrottlingException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert emulator.count("DescribeBackups") == 2


def test_faults_scoped_to_an_operation_spare_the_others(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.account.add_backup(PENDING)
    emulator.faults.throttle_next(1, operation="RestoreBackup")
    assert ids(client.describe_backups()) == [PENDING]
    with pytest.raises(ClientError) as exc:
        client.restore_backup(BackupId=PENDING)
    assert error_code(exc) == "ThrottlingException"
    assert client.restore_backup(BackupId=PENDING)["Backup"]["BackupState"] == "READY"


def test_rate_limit_is_a_token_bucket_on_the_modelled_clock(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock
) -> None:
    emulator.faults.throttle_above_rate(1.0, operation="DescribeBackups", burst=2)
    client.describe_backups()
    client.describe_backups()
    with pytest.raises(ClientError) as exc:
        client.describe_backups()
    assert error_code(exc) == "ThrottlingException"
    clock.advance(1.0)
    client.describe_backups()
    assert emulator.count("DescribeBackups", "ok") == 3
    assert emulator.count("DescribeBackups", "ThrottlingException") == 1


def test_internal_failure_is_a_500_that_boto3_retries(
    emulator: CloudHsmEmulator, make_client: ClientFactory, backoffs: list[float]
) -> None:
    emulator.account.add_backup(PENDING)
    emulator.faults.fail_next(1, operation="RestoreBackup")
    single = make_client(attempts=1)
    with pytest.raises(single.exceptions.CloudHsmInternalFailureException) as exc:
        single.restore_backup(BackupId=PENDING)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500

    emulator.faults.fail_next(1)
    retrying = make_client(attempts=2)
    assert retrying.restore_backup(BackupId=PENDING)["ResponseMetadata"]["RetryAttempts"] == 1
    assert emulator.count("RestoreBackup", "CloudHsmInternalFailureException") == 2


def test_denied_operation_names_the_action_and_resource(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.account.add_backup(PENDING)
    emulator.faults.deny("RestoreBackup")
    assert ids(client.describe_backups()) == [PENDING]
    with pytest.raises(client.exceptions.CloudHsmAccessDeniedException) as exc:
        client.restore_backup(BackupId=PENDING)
    message = exc.value.response["Error"]["Message"]
    assert "not authorized to perform: cloudhsm:RestoreBackup" in message
    assert f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{PENDING}" in message
    emulator.faults.allow("RestoreBackup")
    assert client.restore_backup(BackupId=PENDING)["Backup"]["BackupState"] == "READY"


def test_added_latency_delays_only_the_targeted_operation(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock
) -> None:
    emulator.account.add_backup(PENDING)
    emulator.faults.add_latency(20.0, operation="DescribeBackups")
    started = clock.now()
    client.describe_backups()
    slow = clock.now() - started
    started = clock.now()
    client.modify_backup_attributes(BackupId=PENDING, NeverExpires=True)
    fast = clock.now() - started
    assert (slow, fast) == (20.0, 0.0)  # modelled seconds: the latency is on the emulator's clock


def test_dropped_connection_is_a_connection_error_that_boto3_retries(
    emulator: CloudHsmEmulator, make_client: ClientFactory, backoffs: list[float]
) -> None:
    emulator.account.add_backup(PENDING)
    emulator.faults.drop_next(1)
    with pytest.raises(ConnectionClosedError):
        make_client(attempts=1).describe_backups()
    emulator.faults.drop_next(1, operation="RestoreBackup")
    response = make_client(attempts=2).restore_backup(BackupId=PENDING)
    assert response["Backup"]["BackupState"] == "READY"
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert emulator.count(outcome="dropped") == 2
    assert emulator.account.backup(PENDING)["BackupState"] == "READY"


def test_clear_disarms_every_fault(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.faults.throttle_next(3).fail_next(3).drop_next(3).deny("DescribeBackups").add_latency(5)
    emulator.faults.throttle_above_rate(0.001)
    emulator.faults.clear()
    assert client.describe_backups()["Backups"] == []
    assert emulator.faults.describe()["deny"] == []


def test_fault_plan_applies_json_specs_and_describes_itself() -> None:
    plan = FaultPlan().apply(
        {
            "throttle_next": {"n": 2, "operation": "RestoreBackup"},
            "deny": ["DeleteBackup"],
            "latency": [{"seconds": 0.1}],
        }
    )
    described = plan.describe()
    assert described["throttle_next"] == [{"n": 2, "operation": "RestoreBackup"}]
    assert described["deny"] == ["DeleteBackup"]
    assert FaultPlan().apply(described).describe() == described
    with pytest.raises(ValueError, match="unknown fault keys"):
        plan.apply({"throttle": 1})


def test_a_plan_refuses_the_faults_its_server_cannot_answer() -> None:
    with pytest.raises(ValueError, match="conflict"):
        FaultPlan(CLOUDHSM_KINDS).conflict_next(1)  # CloudHSM has no conflict error
    gateway = FaultPlan(GATEWAY_KINDS)
    with pytest.raises(ValueError, match="drop"):
        gateway.drop_next(1)
    with pytest.raises(ValueError, match="unknown fault keys"):
        gateway.apply({"latency": {"seconds": 1}})
    gateway.conflict_next(1, "AddPermission").deny("GetParameter")
    decided = [gateway.decide(operation, T0).fault for operation in ("GetParameter", "AddPermission", "AddPermission")]
    assert decided == ["deny", "conflict", None]  # a counted fault is consumed, a denial holds


# -- the call record ------------------------------------------------------------------------------


def test_every_call_is_recorded_with_params_outcome_and_modelled_time(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client, clock: ManualClock
) -> None:
    emulator.account.add_backup(PENDING)
    client.describe_backups(Filters={"backupIds": [PENDING]})
    clock.advance(30)
    client.restore_backup(BackupId=PENDING)
    with pytest.raises(client.exceptions.CloudHsmInvalidRequestException):
        client.restore_backup(BackupId=PENDING)
    calls = emulator.calls
    assert [(c.operation, c.outcome, c.at) for c in calls] == [
        ("DescribeBackups", "ok", T0),
        ("RestoreBackup", "ok", T0 + 30),
        ("RestoreBackup", "CloudHsmInvalidRequestException", T0 + 30),
    ]
    assert calls[0].params == {"Filters": {"backupIds": [PENDING]}}
    assert emulator.count("RestoreBackup") == 2
    assert emulator.count(outcome="error") == 1
    assert emulator.count() == 3


def test_concurrent_clients_are_all_served_and_counted(emulator: CloudHsmEmulator, make_client: ClientFactory) -> None:
    emulator.account.add_backup(PENDING)
    clients = [make_client() for _ in range(8)]
    failures: list[BaseException] = []

    def work(c: CloudHSMV2Client) -> None:
        try:
            for _ in range(10):
                assert ids(c.describe_backups()) == [PENDING]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert emulator.count("DescribeBackups", "ok") == 80


# -- seeds ----------------------------------------------------------------------------------------

SEED = {
    "region": "eu-west-1",
    "account": "210987654321",
    "restore_seconds": 120,
    "restore_in_progress_state": "CREATE_IN_PROGRESS",
    "backups": [
        {"id": PENDING, "state": "PENDING_DELETION", "cluster": CLUSTER, "tags": {"Env": "prod"}},
        {"id": READY, "state": "READY", "restore_seconds": 5, "never_expires": True, "mode": "NON_FIPS"},
    ],
}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_seed_file_sets_region_account_and_backups(
    suffix: str, tmp_path: Path, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"seed{suffix}"
    path.write_text(json.dumps(SEED) if suffix == ".json" else yaml.safe_dump(SEED))
    clock = ManualClock()
    with CloudHsmEmulator(EmulatedAccount(clock)).seed(path) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDHSM_V2", emulator.url)
        client = boto3.client("cloudhsmv2", region_name="eu-west-1")
        backups = {b["BackupId"]: b for b in client.describe_backups()["Backups"]}
        restoring = client.restore_backup(BackupId=PENDING)["Backup"]
        clock.advance(120)
        restored = client.describe_backups(Filters={"backupIds": [PENDING]})["Backups"][0]
    pending, ready = backups[PENDING], backups[READY]
    assert pending["BackupArn"] == f"arn:aws:cloudhsm:eu-west-1:210987654321:backup/{PENDING}"
    assert pending["ClusterId"] == CLUSTER
    assert pending["TagList"] == [{"Key": "Env", "Value": "prod"}]
    assert pending["DeleteTimestamp"] == datetime.fromtimestamp(T0, tz=UTC) + timedelta(days=7)
    assert (pending["HsmType"], pending["Mode"], pending["NeverExpires"]) == ("hsm2m.medium", "FIPS", False)
    assert (ready["Mode"], ready["NeverExpires"], "TagList" in ready) == ("NON_FIPS", True, False)
    assert ready["ClusterId"].startswith("cluster-")
    assert restoring["BackupState"] == "CREATE_IN_PROGRESS"
    assert restored["BackupState"] == "READY"


def test_demo_seed_has_two_tagged_backups_pending_deletion(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = load_seed(DEMO_SEED)
    assert len(seed.backups) == 2
    with CloudHsmEmulator(EmulatedAccount(ManualClock())).seed(seed) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDHSM_V2", emulator.url)
        backups = boto3.client("cloudhsmv2").describe_backups(Filters={"states": ["PENDING_DELETION"]})["Backups"]
    assert len(backups) == 2
    assert all(len(b["TagList"]) >= 3 for b in backups)


def test_a_seeded_backup_without_state_is_pending_deletion_and_may_carry_its_delete_time(
    emulator: CloudHsmEmulator, client: CloudHSMV2Client
) -> None:
    emulator.seed(load_seed({"backups": [{"id": PENDING, "deleted_seconds_ago": 3600}]}))
    backup = client.describe_backups(Filters={"backupIds": [PENDING]})["Backups"][0]
    assert backup["BackupState"] == "PENDING_DELETION"
    assert "DeleteTimestamp" in backup


def test_seeded_faults_are_armed_and_come_back_on_reset(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.seed({"backups": [{"id": PENDING}], "faults": {"throttle_next": {"n": 1, "operation": "RestoreBackup"}}})
    with pytest.raises(ClientError) as exc:
        client.restore_backup(BackupId=PENDING)
    assert error_code(exc) == "ThrottlingException"
    assert client.restore_backup(BackupId=PENDING)["Backup"]["BackupState"] == "READY"
    emulator.reset()
    with pytest.raises(ClientError) as exc:
        client.restore_backup(BackupId=PENDING)
    assert error_code(exc) == "ThrottlingException"
    assert emulator.account.backup(PENDING)["BackupState"] == "PENDING_DELETION"


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ({"backups": [{"id": PENDING, "colour": "red"}]}, "unknown keys"),
        ({"backups": [{"state": "READY"}]}, "needs an 'id'"),
        ({"zone": "x", "backups": []}, "unknown seed keys"),
        ({"backups": [{"id": "backup-1"}]}, "does not match"),
        ({"backups": [{"id": PENDING, "tags": {"k": "v" * 257}}]}, "at most 256"),
        ({"backups": [{"id": READY, "state": "READY", "deleted_seconds_ago": 5}]}, "delete timestamp"),
    ],
)
def test_a_bad_seed_is_rejected_with_the_reason(seed: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CloudHsmEmulator(EmulatedAccount(ManualClock())).seed(seed)


# -- admin surface --------------------------------------------------------------------------------


def test_admin_lists_backups_and_calls(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.account.add_backup(PENDING, create_timestamp=T0 - 10)
    client.restore_backup(BackupId=PENDING)
    status, state = admin(emulator, "/_emulator/backups")
    assert status == 200
    assert state["backups"][0]["BackupState"] == "READY"
    assert state["backups"][0]["CreateTimestamp"] == T0 - 10
    status, calls = admin(emulator, "/_emulator/calls?operation=RestoreBackup")
    assert (status, calls["count"]) == (200, 1)
    assert calls["calls"][0]["params"] == {"BackupId": PENDING}
    assert calls["calls"][0]["outcome"] == "ok"


def test_admin_arms_faults_that_boto3_then_meets(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    status, armed = admin(emulator, "/_emulator/faults", {"deny": "DescribeBackups"})
    assert (status, armed["deny"]) == (200, ["DescribeBackups"])
    with pytest.raises(client.exceptions.CloudHsmAccessDeniedException):
        client.describe_backups()
    admin(emulator, "/_emulator/faults", {"clear": True})
    assert client.describe_backups()["Backups"] == []
    status, error = admin(emulator, "/_emulator/faults", {"explode": True})
    assert status == 400
    assert "explode" in error["error"]


def test_admin_reset_restores_the_seeded_world(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    emulator.account.add_backup(PENDING)
    client.restore_backup(BackupId=PENDING)
    emulator.faults.deny("RestoreBackup")
    status, _ = admin(emulator, "/_emulator/reset", {})
    assert status == 200
    assert emulator.calls == []
    assert client.restore_backup(BackupId=PENDING)["Backup"]["BackupState"] == "READY"


def test_admin_adds_backups_and_advances_the_clock(emulator: CloudHsmEmulator, client: CloudHSMV2Client) -> None:
    status, added = admin(emulator, "/_emulator/backups", {"id": PENDING, "restore_seconds": 300})
    assert (status, added["BackupState"]) == (201, "PENDING_DELETION")
    assert client.restore_backup(BackupId=PENDING)["Backup"]["BackupState"] == "PENDING_DELETION"
    status, now = admin(emulator, "/_emulator/clock", {"advance": 300})
    assert (status, now["now"]) == (200, T0 + 300)
    assert client.describe_backups()["Backups"][0]["BackupState"] == "READY"
    assert admin(emulator, "/_emulator/nowhere")[0] == 404


# -- standalone -----------------------------------------------------------------------------------


def test_standalone_server_prints_the_export_line_and_serves_boto3(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "offline")}
    command = [sys.executable, "-m", "cloudhsm_offline.emulator", "--seed", str(DEMO_SEED), "--speed", "60"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            export = process.stdout.readline().strip()
            assert export.startswith("export AWS_ENDPOINT_URL_CLOUDHSM_V2=http://127.0.0.1:")
            url = export.split("=", 1)[1]
            assert url in banner
            monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDHSM_V2", url)
            backups = boto3.client("cloudhsmv2").describe_backups()["Backups"]
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert sorted(b["BackupId"] for b in backups) == ["backup-demo2replace", "backup-demo2restore"]
    assert process.returncode == 128 + signal.SIGTERM  # terminate() sends SIGTERM: 143, like run-template


def test_standalone_server_refuses_a_bad_seed_with_the_reason(tmp_path: Path) -> None:
    seed = tmp_path / "bad.yaml"
    seed.write_text("backups:\n  - id: backup-1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "offline")}
    command = [sys.executable, "-m", "cloudhsm_offline.emulator", "--seed", str(seed)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30, check=False)
    assert result.returncode == 2
    assert "backup-1" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("error", "reported"), [(ConnectionResetError(104, "reset by peer"), False), (ValueError("bug"), True)]
)
def test_a_client_that_went_away_is_no_traceback_but_a_server_error_is(
    error: Exception, reported: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail() -> None:
        raise error

    server = LoopbackServer(CloudHsmEmulator(EmulatedAccount(ManualClock())).respond)
    try:
        try:
            fail()
        except Exception:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    assert ("Traceback" in capsys.readouterr().err) is reported
