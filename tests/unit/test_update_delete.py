"""Update and Delete through the real handler, asserting on the body CloudFormation receives."""

from __future__ import annotations

import pytest
from cloudhsm_backup_restore import app
from cloudhsm_backup_restore.ownership import Resource

from tests.unit.conftest import (
    BACKUP_ARN,
    BACKUP_ID,
    OTHER_ARN,
    OTHER_BACKUP_ID,
    OWNER_KEY,
    STACK_ID,
    World,
    backup,
    expect_failed,
    expect_success,
    record_of,
)

ME = Resource(STACK_ID, "RestoredBackup", BACKUP_ARN)
DELETE_PROPS = {"BackupId": BACKUP_ID, "OnDelete": "Delete"}


def owned_by(*resources: Resource, env: bool = True) -> list[dict[str, str]]:
    """A TagList whose ownership record names ``resources`` (owner first)."""
    tags = [{"Key": "Environment", "Value": "prod"}] if env else []
    if resources:
        tags.append({"Key": OWNER_KEY, "Value": record_of(*resources)})
    return tags


def test_update_with_same_backup_rechecks_and_returns_fresh_data(world: World) -> None:
    world.describe(backup("READY", TagList=[{"Key": "Environment", "Value": "staging"}]))
    body = expect_success(world.invoke("Update"))
    assert body["Data"]["Tag.Environment"] == "staging"


def test_update_restores_again_if_someone_deleted_the_backup_meanwhile(world: World) -> None:
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("READY"))
    world.protect()
    expect_success(world.invoke("Update"))


def test_update_to_a_new_backup_id_is_a_replacement(world: World) -> None:
    world.describe(backup("PENDING_DELETION", backup_id=OTHER_BACKUP_ID), backup_id=OTHER_BACKUP_ID)
    world.restored(backup("READY", backup_id=OTHER_BACKUP_ID), backup_id=OTHER_BACKUP_ID)
    world.protect(backup_id=OTHER_BACKUP_ID)
    body = expect_success(
        world.invoke("Update", ResourceProperties={"BackupId": OTHER_BACKUP_ID}),
        physical_id=OTHER_ARN,
    )
    assert body["Data"]["BackupId"] == OTHER_BACKUP_ID


def test_update_to_a_new_region_is_a_replacement(world: World) -> None:
    arn = f"arn:aws:cloudhsm:eu-west-1:123456789012:backup/{BACKUP_ID}"
    world.describe(backup("READY", BackupArn=arn))
    body = expect_success(
        world.invoke("Update", ResourceProperties={"BackupId": BACKUP_ID, "Region": "eu-west-1"}), physical_id=arn
    )
    assert body["PhysicalResourceId"] != BACKUP_ARN  # CloudFormation will delete the old one


def test_update_applies_a_changed_never_expires(world: World) -> None:
    world.describe(backup("READY"))
    world.protect()
    body = expect_success(world.invoke("Update", ResourceProperties={"BackupId": BACKUP_ID, "NeverExpires": True}))
    assert body["Data"]["NeverExpires"] == "true"


def test_failed_update_keeps_the_old_physical_id(world: World) -> None:
    world.describe(None, backup_id=OTHER_BACKUP_ID)
    body = expect_failed(
        world.invoke("Update", ResourceProperties={"BackupId": OTHER_BACKUP_ID}), f"{OTHER_BACKUP_ID} in us-east-1"
    )
    assert body["PhysicalResourceId"] == BACKUP_ARN


def test_failed_update_that_restored_leaves_it_to_the_rollback_update(world: World) -> None:
    """No undo (defect 3): the rollback Update back to the old backup deletes this one by the record."""
    world.describe(backup("PENDING_DELETION", backup_id=OTHER_BACKUP_ID), backup_id=OTHER_BACKUP_ID)
    world.restored(backup("READY", backup_id=OTHER_BACKUP_ID), backup_id=OTHER_BACKUP_ID)
    world.error("modify_backup_attributes", "CloudHsmInvalidRequestException", message="cannot modify")
    body = expect_failed(
        world.invoke("Update", ResourceProperties={"BackupId": OTHER_BACKUP_ID, "OnDelete": "Delete"}), "cannot modify"
    )
    assert body["PhysicalResourceId"] == BACKUP_ARN
    world.cloudhsm.assert_no_pending_responses()  # no DeleteBackup: the Stubber would refuse it


# -- Delete --------------------------------------------------------------------------------------


def test_delete_of_a_failed_create_that_restored_nothing_deletes_nothing(world: World) -> None:
    world.describe(backup("READY"))  # READY, but no record naming this resource
    body = expect_success(
        world.invoke("Delete", PhysicalResourceId="create-failed-1234", ResourceProperties=DELETE_PROPS),
        physical_id="create-failed-1234",
    )
    assert body["Data"] == {}


def test_delete_of_a_failed_create_that_restored_deletes_it(world: World) -> None:
    world.describe(backup("READY", TagList=owned_by(ME)))
    world.cloudhsm.add_response("delete_backup", {"Backup": backup("PENDING_DELETION")}, {"BackupId": BACKUP_ID})
    expect_success(
        world.invoke("Delete", PhysicalResourceId="create-failed-1234", ResourceProperties=DELETE_PROPS),
        physical_id="create-failed-1234",
    )


def test_delete_with_retain_by_the_owner_releases_the_record(world: World) -> None:
    world.describe(backup("READY", TagList=owned_by(ME)))
    world.cloudhsm.add_response("untag_resource", {}, {"ResourceId": BACKUP_ID, "TagKeyList": [OWNER_KEY]})
    expect_success(world.invoke("Delete"))


def test_delete_with_retain_of_an_adopted_backup_makes_no_change(world: World) -> None:
    world.describe(backup("READY"))
    expect_success(world.invoke("Delete"))


def test_delete_with_delete_by_the_owner_returns_the_backup_to_pending_deletion(world: World) -> None:
    world.describe(backup("READY", TagList=owned_by(ME)))
    world.cloudhsm.add_response("delete_backup", {"Backup": backup("PENDING_DELETION")}, {"BackupId": BACKUP_ID})
    expect_success(world.invoke("Delete", ResourceProperties=DELETE_PROPS))


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param([{"Key": "Environment", "Value": "prod"}], id="adopted (no record)"),
        pytest.param(owned_by(Resource(STACK_ID, "Other", BACKUP_ARN)), id="owned by another logical id"),
        pytest.param(owned_by(Resource(STACK_ID, "RestoredBackup", BACKUP_ID)), id="owned under another physical id"),
    ],
)
def test_delete_by_a_non_owner_never_deletes(world: World, tags: list[dict[str, str]]) -> None:
    world.describe(backup("READY", TagList=tags))
    expect_success(world.invoke("Delete", ResourceProperties=DELETE_PROPS))


def test_delete_of_an_owner_that_took_over_hands_the_backup_back(world: World) -> None:
    previous = Resource(STACK_ID, "OldName", BACKUP_ARN)
    world.describe(backup("READY", TagList=owned_by(ME, previous)))
    world.tag(value=f"{previous.token} returned-by {ME.label}")
    expect_success(world.invoke("Delete", ResourceProperties=DELETE_PROPS))


def test_delete_of_a_claimant_that_was_taken_over_withdraws_its_claim(world: World) -> None:
    new = Resource(STACK_ID, "NewName", BACKUP_ARN)
    world.describe(backup("READY", TagList=owned_by(new, ME)))
    world.tag(value=record_of(new))
    expect_success(world.invoke("Delete", ResourceProperties=DELETE_PROPS))


def test_delete_reads_tags_with_list_tags_when_describe_carries_none(world: World) -> None:
    described = backup("READY")
    del described["TagList"]
    world.describe(described)
    world.cloudhsm.add_response("list_tags", {"TagList": owned_by(ME)}, {"ResourceId": BACKUP_ID})
    world.cloudhsm.add_response("delete_backup", {"Backup": backup("PENDING_DELETION")}, {"BackupId": BACKUP_ID})
    expect_success(world.invoke("Delete", ResourceProperties=DELETE_PROPS))


@pytest.mark.parametrize("state", ["PENDING_DELETION", "DELETED", None])
def test_delete_of_a_backup_already_deleted_or_gone_succeeds(world: World, state: str | None) -> None:
    world.describe(backup(state) if state else None)
    expect_success(world.invoke("Delete", ResourceProperties=DELETE_PROPS))


def test_delete_of_a_backup_that_is_not_found_succeeds(world: World) -> None:
    world.describe(backup("READY", TagList=owned_by(ME)))
    world.error("delete_backup", "CloudHsmResourceNotFoundException")
    expect_success(world.invoke("Delete", ResourceProperties=DELETE_PROPS))


def test_delete_denied_fails_naming_the_action(world: World) -> None:
    world.describe(backup("READY", TagList=owned_by(ME)))
    for _ in range(4):  # the first try and three retries while a fresh grant could be propagating
        world.error("delete_backup", "CloudHsmAccessDeniedException")
    world.describe(backup("READY", TagList=owned_by(ME)))  # still READY: the failure is reported
    body = expect_failed(world.invoke("Delete", ResourceProperties=DELETE_PROPS), "cloudhsm:DeleteBackup")
    assert body["PhysicalResourceId"] == BACKUP_ARN


def test_delete_with_invalid_properties_retains_rather_than_blocking_the_stack(world: World) -> None:
    expect_success(world.invoke("Delete", ResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Shred"}))


def test_delete_never_sleeps(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("crhelper.resource_helper.sleep", slept.append)
    world.describe(backup("READY"))
    expect_success(world.invoke("Delete", timeout=900.0))
    assert slept == []
    assert world.clock.sleeps == []
    assert app.helper._sleep_on_delete == 0


def test_rollback_of_a_failed_replacement_deletes_the_backup_it_left_restored(world: World) -> None:
    # The failed Update restored OTHER (and recorded itself as its owner) but could not undo it; CloudFormation
    # rolls back with an Update to the old properties, naming the failed ones as OldResourceProperties.
    world.describe(backup("READY"))
    left = Resource(STACK_ID, "RestoredBackup", OTHER_ARN)
    world.describe(backup("READY", backup_id=OTHER_BACKUP_ID, TagList=owned_by(left)), backup_id=OTHER_BACKUP_ID)
    world.cloudhsm.add_response(
        "delete_backup",
        {"Backup": backup("PENDING_DELETION", backup_id=OTHER_BACKUP_ID)},
        {"BackupId": OTHER_BACKUP_ID},
    )
    expect_success(
        world.invoke("Update", OldResourceProperties={"BackupId": OTHER_BACKUP_ID, "OnDelete": "Delete"}),
        physical_id=BACKUP_ARN,
    )


def test_a_forward_replacement_leaves_the_old_backup_to_the_cleanup_delete(world: World) -> None:
    world.describe(backup("READY", backup_id=OTHER_BACKUP_ID), backup_id=OTHER_BACKUP_ID)
    expect_success(
        world.invoke(
            "Update",
            ResourceProperties={"BackupId": OTHER_BACKUP_ID},
            OldResourceProperties={"BackupId": BACKUP_ID, "OnDelete": "Delete"},
        ),
        physical_id=OTHER_ARN,
    )
