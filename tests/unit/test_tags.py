"""The Tags property through the real handler: GIVEN a stubbed CloudHSM, THEN the TagResource and UntagResource calls
made (every call is stubbed, so an extra or a missing call fails the test) and the body CloudFormation receives."""

from __future__ import annotations

from typing import Any

from botocore.stub import ANY

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

TEAM = [{"Key": "team", "Value": "x"}]


def props(tags: list[dict[str, str]], backup_id: str = BACKUP_ID, **extra: str) -> dict[str, Any]:
    return {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f", "BackupId": backup_id, "Tags": tags}


def untagged(state: str, **extra: Any) -> dict[str, Any]:
    """A backup without tags: DescribeBackups then has no TagList (botocore: TagList has at least 1 member)."""
    shape = backup(state, **extra)
    del shape["TagList"]
    return shape


def expect_tag(world: World, tags: list[dict[str, Any]], backup_id: str = BACKUP_ID) -> None:
    world.cloudhsm.add_response("tag_resource", {}, {"ResourceId": backup_id, "TagList": tags})


def expect_untag(world: World, keys: list[str]) -> None:
    world.cloudhsm.add_response("untag_resource", {}, {"ResourceId": BACKUP_ID, "TagKeyList": keys})


def owned(*tags: dict[str, str]) -> list[dict[str, str]]:
    """A TagList with ``tags`` and the ownership record naming the unit resource."""
    from cloudhsm_backup_restore.ownership import Resource

    return [*tags, {"Key": OWNER_KEY, "Value": record_of(Resource(STACK_ID, "RestoredBackup", BACKUP_ARN))}]


def test_a_restore_writes_the_tags_and_the_record_in_one_call(world: World) -> None:
    """The happy path stays at 4 CloudHSM calls: Describe, Restore, Tag (Tags and the record), Modify."""
    world.describe(untagged("PENDING_DELETION"))
    world.restore(untagged("READY"))
    expect_tag(world, [*TEAM, {"Key": OWNER_KEY, "Value": ANY}])
    world.protect(TagList=owned(*TEAM))  # ModifyBackupAttributes answers the backup with its tags
    data = expect_success(world.invoke("Create", ResourceProperties=props(TEAM)))["Data"]
    assert data["Tag.team"] == "x"
    assert data["TagList"].startswith('[{"Key":"team","Value":"x"},{"Key":"cloudhsm-backup-restore:owner"')


def test_an_adopted_backup_gets_the_tags_it_lacks(world: World) -> None:
    world.describe(backup("READY", TagList=[{"Key": "Environment", "Value": "prod"}, {"Key": "team", "Value": "x"}]))
    expect_tag(world, [{"Key": "Environment", "Value": "staging"}])
    tags = [{"Key": "team", "Value": "x"}, {"Key": "Environment", "Value": "staging"}]  # team is there: not written
    data = expect_success(world.invoke("Create", ResourceProperties=props(tags)))["Data"]
    assert (data["Tag.Environment"], data["Tag.team"]) == ("staging", "x")


def test_tags_already_on_the_backup_cost_no_call(world: World) -> None:
    world.describe(backup("READY", TagList=owned(*TEAM)))
    expect_success(world.invoke("Update", ResourceProperties=props(TEAM), OldResourceProperties=props(TEAM)))


def test_an_update_tags_the_difference_and_removes_only_what_its_previous_tags_set(world: World) -> None:
    before = [{"Key": "team", "Value": "x"}, {"Key": "env", "Value": "dev"}, {"Key": "cost", "Value": "1"}]
    on_backup = [
        {"Key": "team", "Value": "x"},
        {"Key": "env", "Value": "dev"},
        {"Key": "cost", "Value": "changed by hand"},  # no longer what this resource set: kept
        {"Key": "Environment", "Value": "prod"},  # never set by this resource: kept
    ]
    world.describe(backup("READY", TagList=owned(*on_backup)))
    expect_tag(world, [{"Key": "team", "Value": "y"}])
    expect_untag(world, ["env"])
    body = expect_success(
        world.invoke(
            "Update", ResourceProperties=props([{"Key": "team", "Value": "y"}]), OldResourceProperties=props(before)
        )
    )
    data = body["Data"]
    assert (data["Tag.team"], data["Tag.cost"], data["Tag.Environment"]) == ("y", "changed by hand", "prod")
    assert "Tag.env" not in data


def test_removing_every_tag_untags_them(world: World) -> None:
    world.describe(backup("READY", TagList=owned(*TEAM)))
    expect_untag(world, ["team"])
    data = expect_success(world.invoke("Update", ResourceProperties=props([]), OldResourceProperties=props(TEAM)))[
        "Data"
    ]
    assert "Tag.team" not in data


def test_a_replacement_does_not_untag_the_new_backup_by_the_old_ones_tags(world: World) -> None:
    """OldResourceProperties of a replacement describe the old backup: its Delete follows, which leaves tags."""
    world.describe(backup("READY", backup_id=OTHER_BACKUP_ID, TagList=TEAM), backup_id=OTHER_BACKUP_ID)
    event = world.event(
        "Update", ResourceProperties=props([], backup_id=OTHER_BACKUP_ID), OldResourceProperties=props(TEAM)
    )
    expect_success(world.invoke("Update", event=event), physical_id=OTHER_ARN)


def test_invalid_old_properties_remove_nothing(world: World) -> None:
    world.describe(backup("READY", TagList=TEAM))
    old = {**props(TEAM), "Tags": "team=x"}
    expect_success(world.invoke("Update", ResourceProperties=props([]), OldResourceProperties=old))


def test_delete_leaves_the_tags_and_removes_only_the_record(world: World) -> None:
    """Retain: the backup stays READY with its tags, as CloudFormation's DeletionPolicy Retain leaves a resource's."""
    world.describe(backup("READY", TagList=owned(*TEAM)))
    expect_untag(world, [OWNER_KEY])
    expect_success(world.invoke("Delete", ResourceProperties=props(TEAM)))


def test_delete_with_delete_calls_only_delete_backup(world: World) -> None:
    world.describe(backup("READY", TagList=owned(*TEAM)))
    world.cloudhsm.add_response("delete_backup", {"Backup": backup("PENDING_DELETION")}, {"BackupId": BACKUP_ID})
    expect_success(world.invoke("Delete", ResourceProperties={**props(TEAM), "OnDelete": "Delete"}))


def test_tags_that_would_exceed_fifty_fail_before_the_restore(world: World) -> None:
    others = [{"Key": f"k{n}", "Value": "v"} for n in range(45)]
    world.describe(backup("PENDING_DELETION", TagList=others))
    tags = [{"Key": f"t{n}", "Value": "v"} for n in range(5)]  # 45 + 5 + the record = 51
    expect_failed(
        world.invoke("Create", ResourceProperties=props(tags)),
        f"Backup {BACKUP_ID} in us-east-1 would have 51 tags",
        "CloudHSM allows 50 per backup",
        "nothing was done",
    )


def test_changing_existing_keys_fits_however_many_tags_the_backup_has(world: World) -> None:
    others = [{"Key": f"k{n}", "Value": "v"} for n in range(49)]
    world.describe(backup("READY", TagList=owned(*others)))
    expect_tag(world, [{"Key": "k0", "Value": "w"}])
    expect_success(world.invoke("Create", ResourceProperties=props([{"Key": "k0", "Value": "w"}])))


def test_tags_deferred_with_the_record_are_written_with_it_once_ready(world: World) -> None:
    world.describe(untagged("PENDING_DELETION"))
    world.restore(untagged("CREATE_IN_PROGRESS"))
    world.error("tag_resource", "CloudHsmInvalidRequestException", message="Backup is not READY")
    world.cloudhsm.add_response(
        "modify_backup_attributes",
        {"Backup": untagged("CREATE_IN_PROGRESS", NeverExpires=True)},
        {"BackupId": BACKUP_ID, "NeverExpires": True},
    )
    world.describe(untagged("READY", NeverExpires=True))
    expect_tag(world, [*TEAM, {"Key": OWNER_KEY, "Value": ANY}])
    assert expect_success(world.invoke("Create", ResourceProperties=props(TEAM)))["Data"]["Tag.team"] == "x"


def test_a_refused_tag_fails_the_request_in_awss_words(world: World) -> None:
    world.describe(backup("READY"))
    world.error("tag_resource", "CloudHsmTagException", message="Tag policy violation")
    expect_failed(
        world.invoke("Create", ResourceProperties=props(TEAM)),
        "CloudHSM TagResource failed for backup-abcdefghijk in us-east-1 (CloudHsmTagException): Tag policy violation",
    )
