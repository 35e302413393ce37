"""End to end: the real handler, real crhelper and real boto3, driven by the CloudFormation simulator
over HTTP against the emulated CloudHSM, with an HTTPS ResponseURL and EventBridge polling on moto.

Each test asserts what CloudFormation (the outcome) and the backup's owner (the emulated backup) see;
the ``world`` fixture also checks, for every test, that the protocol held and no ResponseURL
signature reached the logs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cloudhsm_offline.cfn.world import OfflineWorld

from tests.functional.conftest import checked_worlds

BACKUP = "backup-abcdefghijk"
OTHER = "backup-zyxwvutsrqp"


def arn(backup_id: str) -> str:
    """The PhysicalResourceId: the backup's ARN (unique per backup and region)."""
    return f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{backup_id}"


@pytest.fixture
def make_world(make_world: Any) -> Iterator[Any]:
    """conftest's factory, plus the protocol check on every world this test made."""
    yield from checked_worlds(make_world)


def calls(world: OfflineWorld, operation: str | None = None, outcome: str | None = None) -> int:
    return int(world.emulator.count(operation, outcome))


def test_fast_restore_answers_in_one_invocation_without_polling(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP, tags={"Environment": "prod"})
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    assert outcome.ok, outcome.summary()
    assert outcome.physical_resource_id == arn(BACKUP)
    assert outcome.invocations == 1
    assert outcome.data["BackupState"] == "READY"
    assert outcome.data["Tag.Environment"] == "prod"
    assert outcome.data["DeleteTimestamp"] == ""
    assert world.eventbridge.rules == {}
    assert calls(world, "RestoreBackup") == 1
    assert calls(world, "DescribeBackups") == 1
    assert calls(world, "TagResource") == 1  # the ownership record
    assert calls(world, "ModifyBackupAttributes") == 1  # NeverExpires true: protected from the retention policy
    assert calls(world) == 4
    assert world.emulator.account.backup(BACKUP)["BackupState"] == "READY"


def test_slow_restore_finishes_in_process(make_world: Any) -> None:
    world = make_world(restore_seconds=90)
    world.emulator.account.add_backup(BACKUP)
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    assert outcome.ok, outcome.summary()
    assert outcome.invocations == 1
    assert outcome.elapsed_modelled >= 90
    assert world.eventbridge.rules == {}


def test_long_restore_hands_off_to_polling_even_with_a_255_character_logical_id(make_world: Any) -> None:
    world = make_world(restore_seconds=600)
    world.emulator.account.add_backup(BACKUP)
    logical_id = "Restored" + "X" * 247
    outcome = world.simulator.create(logical_id, {"BackupId": BACKUP})
    assert outcome.ok, outcome.summary()
    assert outcome.data["BackupState"] == "READY"
    assert 600 <= outcome.elapsed_modelled < 600 + 180  # READY at 600 s, seen by the next poll
    assert outcome.invocations > 1
    assert len(world.eventbridge.rules) == 1
    rule = next(iter(world.eventbridge.rules))
    assert len(rule) <= 64
    assert rule.startswith(f"cloudhsm-poll-{world.provider_id}-")  # the provider's own prefix
    assert world.eventbridge.problems == []
    assert calls(world, "RestoreBackup") == 1


def test_already_ready_and_duplicate_deliveries_succeed(make_world: Any) -> None:
    world = make_world(duplicate_delivery=True)
    world.emulator.account.add_backup(BACKUP, state="READY")
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    assert outcome.status == "SUCCESS", outcome.summary()
    assert outcome.deliveries == 2
    assert {r.parsed["Status"] for r in outcome.responses} == {"SUCCESS"}
    assert calls(world, "RestoreBackup") == 0


def test_not_found_fails_and_the_rollback_delete_touches_nothing(make_world: Any) -> None:
    world = make_world()
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP, "OnDelete": "Delete"})
    assert outcome.status == "FAILED"
    assert f"Backup {BACKUP} in us-east-1 was not found" in outcome.reason
    assert outcome.rollback is not None
    assert outcome.rollback.ok
    assert calls(world, "DeleteBackup") == 0


def test_deleted_backup_fails_naming_its_state(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP, state="DELETED")
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    assert outcome.status == "FAILED"
    assert "is DELETED" in outcome.reason
    assert calls(world, "RestoreBackup") == 0


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({"BackupId": "backup-1"}, "Property BackupId must match"),
        ({"BackupId": BACKUP, "NeverExpire": True}, "Unknown property NeverExpire (did you mean NeverExpires?)"),
    ],
)
def test_bad_and_unknown_properties_fail_before_any_call(
    make_world: Any, properties: dict[str, Any], reason: str
) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    outcome = world.simulator.create("Restored", properties)
    assert outcome.status == "FAILED"
    assert reason in outcome.reason
    assert outcome.rollback is not None
    assert outcome.rollback.ok
    assert calls(world) == 0
    assert world.emulator.account.backup(BACKUP)["BackupState"] == "PENDING_DELETION"


def test_throttling_bursts_and_internal_failures_are_ridden_out(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    world.emulator.faults.throttle_next(3, operation="RestoreBackup")
    world.emulator.faults.fail_next(2, operation="DescribeBackups")
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    assert outcome.ok, outcome.summary()
    assert calls(world, "RestoreBackup", "ThrottlingException") == 3
    assert calls(world, "DescribeBackups", "CloudHsmInternalFailureException") == 2
    assert world.emulator.account.backup(BACKUP)["BackupState"] == "READY"


def test_access_denied_names_the_missing_action(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    world.emulator.faults.deny("RestoreBackup")
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    assert outcome.status == "FAILED"
    assert "cloudhsm:RestoreBackup" in outcome.reason
    assert outcome.reason.startswith("Access denied")


def test_endpoint_down_fails_within_the_lambda_deadline(make_world: Any) -> None:
    world = make_world(emulator=False, env={"AWS_ENDPOINT_URL_CLOUDHSM_V2": "http://127.0.0.1:9"})
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    assert outcome.status == "FAILED"
    assert outcome.reason.startswith("Could not reach the CloudHSM endpoint for us-east-1")
    assert outcome.invocations == 1
    assert not outcome.timed_out


def test_update_without_new_id_rechecks_and_with_new_id_replaces(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    world.emulator.account.add_backup(OTHER)
    created = world.simulator.create("Restored", {"BackupId": BACKUP, "OnDelete": "Delete"})
    assert created.ok, created.summary()

    same = world.simulator.update("Restored", {"BackupId": BACKUP, "OnDelete": "Delete", "NeverExpires": True})
    assert same.ok, same.summary()
    assert same.physical_resource_id == arn(BACKUP)
    assert same.cleanup is None
    assert same.data["NeverExpires"] == "true"
    assert world.emulator.account.backup(BACKUP)["NeverExpires"] is True

    replaced = world.simulator.update("Restored", {"BackupId": OTHER, "OnDelete": "Delete"})
    assert replaced.all_ok, replaced.summary()
    assert replaced.physical_resource_id == arn(OTHER)
    assert replaced.cleanup is not None
    assert replaced.cleanup.event["PhysicalResourceId"] == arn(BACKUP)
    assert world.emulator.account.backup(OTHER)["BackupState"] == "READY"
    assert world.emulator.account.backup(BACKUP)["BackupState"] == "PENDING_DELETION"


@pytest.mark.parametrize(("on_delete", "state_after"), [("Retain", "READY"), ("Delete", "PENDING_DELETION")])
def test_delete_honours_on_delete(make_world: Any, on_delete: str, state_after: str) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    assert world.simulator.create("Restored", {"BackupId": BACKUP, "OnDelete": on_delete}).ok
    deleted = world.simulator.delete("Restored")
    assert deleted.ok, deleted.summary()
    assert deleted.physical_resource_id == arn(BACKUP)
    assert deleted.elapsed_modelled < 60  # no two-minute sleep
    assert world.emulator.account.backup(BACKUP)["BackupState"] == state_after


def test_fifty_maximal_tags_stay_within_4096_bytes(make_world: Any) -> None:
    world = make_world()
    tags = [{"Key": f"{i:02d}" + "k" * 126, "Value": "v" * 256} for i in range(50)]
    world.emulator.account.add_backup(BACKUP, tags=tags)
    outcome = world.simulator.create("R" * 255, {"BackupId": BACKUP})
    assert outcome.ok, outcome.summary()
    assert outcome.response_bytes is not None
    assert outcome.response_bytes <= 4096
    assert outcome.data["TagsTruncated"] == "true"
    kept = json.loads(outcome.data["TagList"])
    assert kept == tags[: len(kept)]


def test_service_timeout_bounds_the_whole_wait(make_world: Any) -> None:
    # 120 s: a hand-off needs its worst case (65 s) of Lambda time left; the 90 s margin leaves 30 s in-process.
    world = make_world(restore_seconds=3000, lambda_timeout=120)
    world.emulator.account.add_backup(BACKUP)
    # Warm the function first: a compressed clock turns a 2 s cold start into 20 modelled seconds.
    assert world.simulator.delete("Warm", {"BackupId": BACKUP}, physical_id="create-failed-warm-up").ok
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP}, service_timeout=150)
    assert outcome.status == "FAILED"
    assert not outcome.timed_out  # the resource answered before CloudFormation gave up
    assert "still PENDING_DELETION after waiting" in outcome.reason
    assert "ServiceTimeout is 150 s" in outcome.reason
    assert outcome.elapsed_modelled < 150
    assert len(world.eventbridge.rules) == 1  # it had handed off to polling before the deadline
