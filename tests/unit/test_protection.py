"""A restored backup stays restored (NeverExpires at once), and a failure undoes nothing."""

from __future__ import annotations

import pytest

from tests.unit.conftest import (
    BACKUP_ID,
    World,
    backup,
    expect_failed,
    expect_success,
)
from tests.unit.test_create import _handed_off, _poll


def test_a_backup_purged_between_restore_and_protection_fails_saying_so_without_restoring_again(
    world: World,
) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    # The retention policy purged it again before NeverExpires took effect: ModifyBackupAttributes says so.
    world.cloudhsm.add_response(
        "modify_backup_attributes",
        {"Backup": backup("PENDING_DELETION", NeverExpires=True)},
        {"BackupId": BACKUP_ID, "NeverExpires": True},
    )
    expect_failed(world.invoke("Create"), "went back to PENDING_DELETION", "retention policy")


def test_a_refused_protection_fails_and_leaves_the_restore_to_the_rollback_delete(world: World) -> None:
    """No undo: a duplicate delivery may already have answered SUCCESS (defect 3); the rollback Delete CloudFormation
    sends for the failed Create deletes the backup by the record (I1)."""
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    world.error("modify_backup_attributes", "CloudHsmInvalidRequestException", message="not allowed")
    expect_failed(
        world.invoke("Create", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Delete"}), "not allowed"
    )
    world.cloudhsm.assert_no_pending_responses()  # and no DeleteBackup was made: the Stubber would refuse it


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
