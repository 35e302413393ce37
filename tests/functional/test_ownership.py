"""Issue 9 end to end: own what you restore, keep it restored, never delete what you don't own.

The real handler, crhelper and boto3 against the emulated CloudHSM, driven by the CloudFormation simulator in
CloudFormation's order of events: a rename creates the new logical id, then deletes the old one in cleanup; a
replacement (Update answering a new physical id) deletes the old id in cleanup; a failed Create is followed by
a rollback Delete; a rolled-back stack update deletes what it created.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cloudhsm_offline.cfn.simulator import CloudFormationSimulator
from cloudhsm_offline.cfn.world import OfflineWorld

from tests.functional.conftest import checked_worlds

BACKUP = "backup-abcdefghijk"
ARN = f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{BACKUP}"
OWNER_KEY = "cloudhsm-backup-restore:owner"
DELETE = {"BackupId": BACKUP, "OnDelete": "Delete"}
CLUSTER = "cluster-clusteroneabc"
DAY = 86400.0


@pytest.fixture
def make_world(make_world: Any) -> Iterator[Any]:
    """conftest's factory, plus the protocol check on every world this test made."""
    yield from checked_worlds(make_world)


def state(world: OfflineWorld) -> str:
    return str(world.emulator.account.backup(BACKUP)["BackupState"])


def owner_record(world: OfflineWorld) -> str | None:
    for tag in world.emulator.account.backup(BACKUP).get("TagList", []):
        if tag["Key"] == OWNER_KEY:
            return str(tag["Value"])
    return None


def second_stack(world: OfflineWorld, name: str = "other-stack") -> CloudFormationSimulator:
    """Another stack in the same account, using the same provider function."""
    return CloudFormationSimulator(
        world.function, world.responses, world.clock, eventbridge=world.eventbridge, stack_name=name
    )


# -- rule 1: a Delete deletes only what this resource restored and still owns ------------------------


def test_a_restoring_create_owns_and_its_delete_honours_on_delete(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    created = world.simulator.create("Restored", DELETE)
    assert created.ok, created.summary()
    assert created.physical_resource_id == ARN
    record = owner_record(world)
    assert record is not None
    assert record.endswith(" owner offline-stack/Restored")
    assert world.simulator.delete("Restored").ok
    assert state(world) == "PENDING_DELETION"


def test_an_adopted_ready_backup_is_retained_even_with_on_delete_delete(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP, state="READY")
    assert world.simulator.create("Restored", DELETE).ok
    assert owner_record(world) is None
    deleted = world.simulator.delete("Restored")
    assert deleted.ok, deleted.summary()
    assert state(world) == "READY"
    assert '"action": "backup.adopted"' in world.logs()
    assert "not restored or owned by this resource" in world.logs()


def test_a_duplicate_delivery_of_the_restoring_create_still_owns(make_world: Any) -> None:
    world = make_world(duplicate_delivery=True)
    world.emulator.account.add_backup(BACKUP)
    created = world.simulator.create("Restored", DELETE)
    assert created.ok, created.summary()
    assert created.deliveries == 2
    assert {r.parsed["Status"] for r in created.responses} == {"SUCCESS"}
    assert world.simulator.delete("Restored").ok
    assert state(world) == "PENDING_DELETION"


def test_rename_new_owns_old_cleanup_keeps_it_deleting_new_honours_on_delete(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    sim = world.simulator
    assert sim.create("OldName", DELETE).ok
    renamed = sim.create("NewName", DELETE)  # CloudFormation creates the new logical id first...
    assert renamed.ok, renamed.summary()
    cleanup = sim.delete("OldName")  # ...then deletes the old one in cleanup
    assert cleanup.ok, cleanup.summary()
    assert state(world) == "READY"
    assert str(owner_record(world)).endswith(" owner offline-stack/NewName")  # the old one withdrew its claim
    assert "+" not in str(owner_record(world))
    assert sim.delete("NewName").ok
    assert state(world) == "PENDING_DELETION"


def test_a_rolled_back_rename_hands_the_backup_back_to_the_old_resource(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    sim = world.simulator
    assert sim.create("OldName", DELETE).ok
    assert sim.create("NewName", DELETE).ok
    assert sim.delete("NewName").ok  # the stack update rolls back: the new resource is deleted
    assert state(world) == "READY"
    assert sim.delete("OldName").ok  # the old resource still owns it
    assert state(world) == "PENDING_DELETION"


def test_two_resources_in_one_stack_never_both_own(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    sim = world.simulator
    assert sim.create("First", DELETE).ok
    assert sim.create("Second", DELETE).ok
    assert sim.delete("First").ok  # not the owner any more: retained
    assert state(world) == "READY"
    assert sim.delete("Second").ok
    assert state(world) == "PENDING_DELETION"


def test_across_stacks_nothing_is_inherited_so_the_adopter_never_deletes(make_world: Any) -> None:
    # Issue 15, defect 4: stack 1 restores B (Retain); stack 2 names B with OnDelete Delete and finds it READY.
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    other = second_stack(world)
    assert world.simulator.create("Restored", {"BackupId": BACKUP}).ok
    adopted = other.create("Restored", DELETE)
    assert adopted.ok, adopted.summary()
    assert str(owner_record(world)).endswith(" owner offline-stack/Restored")  # stack 2 took nothing over
    assert world.simulator.delete("Restored").ok  # the owner's Retain: kept, and the record withdrawn
    assert other.delete("Restored").ok  # the adopter never restored it: it may not delete it
    assert state(world) == "READY"
    assert world.emulator.count("DeleteBackup") == 0


@pytest.mark.parametrize(
    ("before", "after"),
    [({}, {"Region": "us-east-1"}), ({"Region": "us-east-1"}, {})],
    ids=["written-out", "removed"],
)
def test_writing_out_or_removing_the_region_is_the_same_backup(
    make_world: Any, before: dict[str, str], after: dict[str, str]
) -> None:
    # Issue 15, defect 1: identity is the resolved ARN, whatever the properties spell.
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    assert world.simulator.create("Restored", {**DELETE, **before}).ok
    updated = world.simulator.update("Restored", {**DELETE, **after})
    assert updated.all_ok, updated.summary()
    assert updated.physical_resource_id == ARN
    assert updated.cleanup is None
    assert state(world) == "READY"
    assert world.emulator.count("DeleteBackup") == 0
    assert world.emulator.count("RestoreBackup") == 1


def test_a_backup_with_fifty_tags_restores_unowned_and_is_retained(make_world: Any) -> None:
    world = make_world()
    tags = {f"Key{i:02d}": "v" for i in range(50)}
    world.emulator.account.add_backup(BACKUP, tags=tags)
    created = world.simulator.create("Restored", DELETE)
    assert created.ok, created.summary()
    assert created.data["BackupState"] == "READY"
    assert owner_record(world) is None
    assert '"reason": "50 tags already"' in world.logs()
    assert world.simulator.delete("Restored").ok
    assert state(world) == "READY"


# -- rule 2: replacement ---------------------------------


def test_replacement_by_a_new_backup_deletes_the_old_one_it_owned(make_world: Any) -> None:
    world = make_world()
    other = "backup-zyxwvutsrqp"
    world.emulator.account.add_backup(BACKUP)
    world.emulator.account.add_backup(other)
    assert world.simulator.create("Restored", DELETE).ok
    replaced = world.simulator.update("Restored", {"BackupId": other, "OnDelete": "Delete"})
    assert replaced.all_ok, replaced.summary()
    assert replaced.cleanup is not None
    assert state(world) == "PENDING_DELETION"
    assert world.emulator.account.backup(other)["BackupState"] == "READY"


# -- rule 3: a restored backup stays restored ---------------------------------------------------------


@pytest.mark.parametrize(("never_expires", "after_sweep"), [(None, "READY"), ("false", "PENDING_DELETION")])
def test_a_restored_backup_past_the_retention_policy_is_protected_unless_opted_out(
    make_world: Any, never_expires: str | None, after_sweep: str
) -> None:
    world = make_world()
    world.emulator.account.add_cluster(CLUSTER, retention_days=30)
    now = world.clock.now()
    world.emulator.account.add_backup(
        BACKUP, cluster_id=CLUSTER, create_timestamp=now - 60 * DAY
    )  # purged by the policy
    world.emulator.account.add_backup("backup-latestbackupx", state="READY", cluster_id=CLUSTER, create_timestamp=now)
    props: dict[str, Any] = {"BackupId": BACKUP}
    if never_expires is not None:
        props["NeverExpires"] = never_expires
    created = world.simulator.create("Restored", props)
    assert created.ok, created.summary()
    assert created.data["NeverExpires"] == ("true" if never_expires is None else "false")
    world.clock.advance(2 * 3600)  # past the next retention sweep
    assert state(world) == after_sweep


# -- rule 4: a refused restore fails fast, in AWS's words ---------------------------------------------


def test_a_refused_restore_fails_fast_with_aws_words(make_world: Any) -> None:
    world = make_world()
    words = "Backup cannot be restored because the source cluster is being deleted."
    world.emulator.account.add_backup(BACKUP, refuse_restore=words)
    outcome = world.simulator.create("Restored", DELETE)
    assert outcome.status == "FAILED"
    assert words in outcome.reason
    assert outcome.invocations == 1
    assert outcome.elapsed_modelled < 120  # not a wait until ServiceTimeout (3600 s)
    assert world.eventbridge.rules == {}


# -- rule 5: a failed operation leaves nothing restored behind it -------------------------------------


def test_a_create_that_restored_then_failed_leaves_the_backup_pending_deletion(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    world.emulator.faults.deny("ModifyBackupAttributes")
    outcome = world.simulator.create("Restored", DELETE)
    assert outcome.status == "FAILED"
    assert "cloudhsm:ModifyBackupAttributes" in outcome.reason
    assert outcome.rollback is not None
    assert outcome.rollback.ok
    assert state(world) == "PENDING_DELETION"


def test_a_create_that_restored_then_failed_with_retain_keeps_it_restored(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    world.emulator.faults.deny("ModifyBackupAttributes")
    outcome = world.simulator.create("Restored", {"BackupId": BACKUP})
    assert outcome.status == "FAILED"
    assert state(world) == "READY"  # Retain: what was restored stays (documented)


def test_the_rollback_delete_of_a_create_that_answered_nothing_deletes_what_it_restored(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    created = world.simulator.create("Restored", DELETE, rollback=False)
    assert created.ok
    # As if that Create had failed after restoring: the rollback Delete carries the failure marker.
    rollback = world.simulator.delete("Restored", DELETE, physical_id="create-failed-some-request")
    assert rollback.ok, rollback.summary()
    assert state(world) == "PENDING_DELETION"


def test_the_rollback_of_a_failed_replacement_deletes_the_backup_it_left_restored(make_world: Any) -> None:
    world = make_world()
    other = "backup-zyxwvutsrqp"
    world.emulator.account.add_backup(BACKUP)
    world.emulator.account.add_backup(other)
    sim = world.simulator
    # As if an Update to `other` had restored it (recording this resource under other's ARN) and then failed
    # without undoing it (a hand-off failure, crhelper's timeout guard): the resource still has BACKUP's id.
    assert sim.create("Restored", {"BackupId": other, "OnDelete": "Delete"}).ok
    assert sim.create("Restored", DELETE).ok
    rollback = sim.update("Restored", DELETE, old_properties={"BackupId": other, "OnDelete": "Delete"})
    assert rollback.all_ok, rollback.summary()
    assert rollback.physical_resource_id == ARN
    assert rollback.cleanup is None
    assert world.emulator.account.backup(other)["BackupState"] == "PENDING_DELETION"
    assert state(world) == "READY"


def test_changing_region_is_a_replacement_whose_cleanup_honours_the_old_on_delete(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_region("eu-west-1")
    world.emulator.account.add_backup(BACKUP)
    world.emulator.account.add_backup(BACKUP, region="eu-west-1")
    sim = world.simulator
    assert sim.create("Restored", DELETE).ok
    moved = sim.update("Restored", {**DELETE, "Region": "eu-west-1"})
    assert moved.all_ok, moved.summary()
    assert moved.physical_resource_id == f"arn:aws:cloudhsm:eu-west-1:123456789012:backup/{BACKUP}"
    assert moved.cleanup is not None
    assert moved.cleanup.event["PhysicalResourceId"] == ARN
    assert state(world) == "PENDING_DELETION"  # the old region's backup: its OnDelete was honoured
    assert world.emulator.account.backup(BACKUP, region="eu-west-1")["BackupState"] == "READY"
    assert sim.delete("Restored").ok
    assert world.emulator.account.backup(BACKUP, region="eu-west-1")["BackupState"] == "PENDING_DELETION"


def test_a_slow_restore_in_a_harsh_retention_race_ends_ready_and_stays_ready(make_world: Any) -> None:
    # The service sweeps every modelled second: once the slow restore is READY the backup is purged again
    # almost at once, before or after the poll sees it. Whichever way the race goes, the resource restores
    # it again and protects it, instead of waiting out ServiceTimeout on a PENDING_DELETION backup.
    world = make_world(restore_seconds=420)
    world.emulator.seed({"purge_interval": 1})
    world.emulator.account.add_cluster(CLUSTER, retention_days=30)
    now = world.clock.now()
    world.emulator.account.add_backup(BACKUP, cluster_id=CLUSTER, create_timestamp=now - 60 * DAY)
    world.emulator.account.add_backup("backup-latestbackupx", state="READY", cluster_id=CLUSTER, create_timestamp=now)
    created = world.simulator.create("Restored", DELETE, service_timeout=900)
    assert created.ok, created.summary()
    assert created.invocations > 1  # handed off to polling
    assert created.data["NeverExpires"] == "true"
    world.clock.advance(3600)
    assert state(world) == "READY"


# -- user tags: set apart from the ownership record ---------------------------------------------------


def user_tags(world: OfflineWorld) -> dict[str, str]:
    tags = world.emulator.account.backup(BACKUP).get("TagList", [])
    return {str(t["Key"]): str(t["Value"]) for t in tags if t["Key"] != OWNER_KEY}


def test_tags_reach_the_backup_follow_updates_and_survive_the_delete(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP, tags=[{"Key": "keep", "Value": "theirs"}])
    first = [{"Key": "team", "Value": "hsm"}, {"Key": "cost", "Value": "42"}]
    created = world.simulator.create("Restored", {**DELETE, "OnDelete": "Retain", "Tags": first})
    assert created.ok, created.summary()
    assert user_tags(world) == {"keep": "theirs", "team": "hsm", "cost": "42"}
    assert owner_record(world) is not None
    assert '"team"' in created.data["TagList"]
    assert created.data["Tag.team"] == "hsm"

    # cost dropped, team changed: only the key this resource set goes; a tag set by someone else stays
    updated = world.simulator.update(
        "Restored", {**DELETE, "OnDelete": "Retain", "Tags": [{"Key": "team", "Value": "ops"}]}
    )
    assert updated.ok, updated.summary()
    assert user_tags(world) == {"keep": "theirs", "team": "ops"}

    deleted = world.simulator.delete("Restored")
    assert deleted.ok, deleted.summary()
    assert state(world) == "READY"
    assert owner_record(world) is None
    assert user_tags(world) == {"keep": "theirs", "team": "ops"}


def test_a_reserved_tag_key_fails_the_create_naming_the_property_and_restores_nothing(make_world: Any) -> None:
    world = make_world()
    world.emulator.account.add_backup(BACKUP)
    created = world.simulator.create("Restored", {**DELETE, "Tags": [{"Key": "aws:team", "Value": "x"}]})
    assert not created.ok
    assert "Tags" in created.reason
    assert state(world) == "PENDING_DELETION"
    assert world.emulator.count("RestoreBackup") == 0
