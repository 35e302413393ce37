"""Rule 3 of issue 9 with a stubbed CloudHSM: a restored backup stays restored (NeverExpires, restore again)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cloudhsm_backup_restore.ownership import Claimant, record

from tests.unit.conftest import (
    BACKUP_ARN,
    BACKUP_ID,
    OWNER_KEY,
    STACK_ID,
    World,
    backup,
    expect_failed,
    expect_success,
)
from tests.unit.test_create import _expect_cleanup, _handed_off, _poll

ME = Claimant(STACK_ID, "RestoredBackup", BACKUP_ARN)


def test_a_backup_purged_between_restore_and_protection_is_restored_again(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    # The retention policy purged it again before NeverExpires took effect: ModifyBackupAttributes says so.
    world.cloudhsm.add_response(
        "modify_backup_attributes",
        {"Backup": backup("PENDING_DELETION", NeverExpires=True)},
        {"BackupId": BACKUP_ID, "NeverExpires": True},
    )
    world.restore(backup("READY", NeverExpires=True))
    world.tag()  # its tags may have gone with the deletion: the owner is recorded again
    body = expect_success(world.invoke("Create"))
    assert body["Data"]["BackupState"] == "READY"
    assert body["Data"]["NeverExpires"] == "true"


def test_protection_refused_because_purged_meanwhile_restores_and_protects_again(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    world.error("modify_backup_attributes", "CloudHsmInvalidRequestException", message="Backup is PENDING_DELETION")
    world.describe(backup("PENDING_DELETION"))
    world.restore(backup("READY", TagList=[{"Key": OWNER_KEY, "Value": record([ME.digest], ME)}]))
    world.protect()  # the record survived the deletion: no TagResource
    expect_success(world.invoke("Create"))


def test_a_refused_protection_of_a_ready_backup_fails_and_undoes_the_restore(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    world.error("modify_backup_attributes", "CloudHsmInvalidRequestException", message="not allowed")
    world.describe(backup("READY"))
    world.describe(backup("READY"))  # the undo re-reads the record: no other resource claims the backup
    world.cloudhsm.add_response("delete_backup", {"Backup": backup("PENDING_DELETION")}, {"BackupId": BACKUP_ID})
    expect_failed(
        world.invoke("Create", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Delete"}), "not allowed"
    )


def test_a_failed_restore_is_not_undone_once_another_resource_took_the_backup_over(world: World) -> None:
    """Between the restore and the failure another stack's resource claimed the READY backup: it stays READY."""
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    world.error("modify_backup_attributes", "CloudHsmInvalidRequestException", message="not allowed")
    world.describe(backup("READY"))
    taken_over = [{"Key": OWNER_KEY, "Value": "0123456789ab+fedcba987654 owner other/Other"}]
    world.describe(backup("READY", TagList=taken_over))
    expect_failed(
        world.invoke("Create", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Delete"}), "not allowed"
    )
    world.cloudhsm.assert_no_pending_responses()  # and no DeleteBackup was made: the Stubber would refuse it


def test_a_poll_restores_again_a_backup_deleted_again_after_this_resource_restored_it(world: World) -> None:
    poll_event = _handed_off(world)
    assert poll_event["CrHelperData"]["Restored"] == "true"
    assert poll_event["CrHelperData"]["RestoredFromDeleteTimestamp"] == "2026-11-20T00:00:00Z"
    # The slow restore finished, then the backup was purged again: a new DeleteTimestamp.
    world.describe(backup("PENDING_DELETION", DeleteTimestamp=datetime(2026, 12, 30, tzinfo=UTC)))
    world.restore(backup("READY"))
    world.tag()
    world.protect()
    _poll(world, poll_event, then=_expect_cleanup)
    body = expect_success(world.capture.responses(world.last_path))
    assert body["Data"]["BackupState"] == "READY"


def test_a_poll_does_not_restore_again_while_its_own_restore_is_under_way(world: World) -> None:
    poll_event = _handed_off(world)
    world.describe(backup("PENDING_DELETION"))  # the same DeleteTimestamp: still the first restore
    _poll(world, poll_event, timeout=30.0)
    assert world.capture.responses(world.last_path) == []


@pytest.mark.parametrize("code", ["CloudHsmResourceLimitExceededException", "CloudHsmTagException"])
def test_a_record_that_does_not_fit_leaves_the_restored_backup_unowned(world: World, code: str) -> None:
    described = backup("PENDING_DELETION")
    del described["TagList"]  # the tag count is unknown: TagResource itself says it does not fit
    world.describe(described)
    world.restore(backup("READY"))
    world.error("tag_resource", code, message="too many tags")
    world.protect()
    body = expect_success(world.invoke("Create", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Delete"}))
    assert "Tag.cloudhsm-backup-restore:owner" not in body["Data"]


def test_a_backup_known_to_hold_fifty_tags_is_not_tagged_at_all(world: World) -> None:
    fifty = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    world.describe(backup("PENDING_DELETION", TagList=fifty))
    world.restore(backup("READY", TagList=fifty))
    world.protect(TagList=fifty)
    expect_success(world.invoke("Create"))


def test_a_record_refused_while_the_restore_is_under_way_is_written_once_ready(world: World) -> None:
    # Unconfirmed whether TagResource accepts a backup still restoring: either way it ends owned.
    world.describe(backup("PENDING_DELETION"))
    world.restore(backup("CREATE_IN_PROGRESS"))
    world.error("tag_resource", "CloudHsmInvalidRequestException", message="Backup is not READY")
    world.cloudhsm.add_response(
        "modify_backup_attributes",
        {"Backup": backup("CREATE_IN_PROGRESS", NeverExpires=True)},
        {"BackupId": BACKUP_ID, "NeverExpires": True},
    )
    world.describe(backup("READY", NeverExpires=True))
    world.tag()
    expect_success(world.invoke("Create"))


def test_protection_refused_while_the_restore_is_under_way_is_applied_once_ready(world: World) -> None:
    # Unconfirmed whether ModifyBackupAttributes accepts a backup still restoring: either way it ends protected.
    world.describe(backup("PENDING_DELETION"))
    world.restore(backup("CREATE_IN_PROGRESS"))
    world.tag()
    world.error("modify_backup_attributes", "CloudHsmInvalidRequestException", message="Backup is not READY")
    world.describe(backup("READY"))
    world.protect()
    body = expect_success(world.invoke("Create"))
    assert body["Data"]["NeverExpires"] == "true"
