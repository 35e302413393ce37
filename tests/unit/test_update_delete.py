"""Update and Delete through the real handler, asserting on the body CloudFormation receives."""

from __future__ import annotations

import pytest
from cloudhsm_backup_restore import app

from tests.unit.conftest import BACKUP_ID, OTHER_BACKUP_ID, World, backup, expect_failed, expect_success


def test_update_with_same_backup_rechecks_and_returns_fresh_data(world: World) -> None:
    world.describe(backup("READY", TagList=[{"Key": "Environment", "Value": "staging"}]))
    body = expect_success(world.invoke("Update"))
    assert body["Data"]["Tag.Environment"] == "staging"


def test_update_restores_again_if_someone_deleted_the_backup_meanwhile(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restore(backup("READY"))
    expect_success(world.invoke("Update"))


def test_update_to_a_new_backup_id_is_a_replacement(world: World) -> None:
    world.describe(backup("PENDING_DELETION", backup_id=OTHER_BACKUP_ID), backup_id=OTHER_BACKUP_ID)
    world.restore(backup("READY", backup_id=OTHER_BACKUP_ID), backup_id=OTHER_BACKUP_ID)
    body = expect_success(
        world.invoke("Update", ResourceProperties={"BackupId": OTHER_BACKUP_ID}),
        physical_id=OTHER_BACKUP_ID,
    )
    assert body["Data"]["BackupId"] == OTHER_BACKUP_ID


def test_update_applies_a_changed_never_expires(world: World) -> None:
    world.describe(backup("READY"))
    world.cloudhsm.add_response(
        "modify_backup_attributes",
        {"Backup": backup("READY", NeverExpires=True)},
        {"BackupId": BACKUP_ID, "NeverExpires": True},
    )
    body = expect_success(world.invoke("Update", ResourceProperties={"BackupId": BACKUP_ID, "NeverExpires": True}))
    assert body["Data"]["NeverExpires"] == "true"


def test_failed_update_keeps_the_old_physical_id(world: World) -> None:
    world.describe(None, backup_id=OTHER_BACKUP_ID)
    body = expect_failed(
        world.invoke("Update", ResourceProperties={"BackupId": OTHER_BACKUP_ID}), f"{OTHER_BACKUP_ID} in us-east-1"
    )
    assert body["PhysicalResourceId"] == BACKUP_ID


def test_delete_of_a_failed_create_succeeds_without_any_call(world: World) -> None:
    body = expect_success(
        world.invoke("Delete", PhysicalResourceId="create-failed-1234"), physical_id="create-failed-1234"
    )
    assert body["Data"] == {}


def test_delete_with_retain_makes_no_call(world: World) -> None:
    expect_success(world.invoke("Delete"))


def test_delete_with_delete_returns_the_backup_to_pending_deletion(world: World) -> None:
    world.cloudhsm.add_response("delete_backup", {"Backup": backup("PENDING_DELETION")}, {"BackupId": BACKUP_ID})
    expect_success(world.invoke("Delete", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Delete"}))


@pytest.mark.parametrize("state", ["PENDING_DELETION", "DELETED", None])
def test_delete_of_a_backup_already_deleted_or_gone_succeeds(world: World, state: str | None) -> None:
    world.error("delete_backup", "CloudHsmInvalidRequestException", message="Backup is not READY")
    world.describe(backup(state) if state else None)
    expect_success(world.invoke("Delete", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Delete"}))


def test_delete_of_a_backup_that_is_not_found_succeeds(world: World) -> None:
    world.error("delete_backup", "CloudHsmResourceNotFoundException")
    expect_success(world.invoke("Delete", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Delete"}))


def test_delete_denied_fails_naming_the_action(world: World) -> None:
    for _ in range(4):  # the first try and three retries while a fresh grant could be propagating
        world.error("delete_backup", "CloudHsmAccessDeniedException")
        world.describe(backup("READY"))
    body = expect_failed(
        world.invoke("Delete", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Delete"}),
        "cloudhsm:DeleteBackup",
    )
    assert body["PhysicalResourceId"] == BACKUP_ID


def test_delete_with_invalid_properties_retains_rather_than_blocking_the_stack(world: World) -> None:
    expect_success(world.invoke("Delete", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Shred"}))


def test_delete_never_sleeps(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("crhelper.resource_helper.sleep", slept.append)
    expect_success(world.invoke("Delete", timeout=900.0))
    assert slept == []
    assert world.clock.sleeps == []
    assert app.helper._sleep_on_delete == 0
