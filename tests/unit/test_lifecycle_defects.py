"""Issue 15's defects, each pinned by a Stubber-exact sequence: what the handler must not call is not stubbed.

GIVEN the calls CloudHSM, SSM and EventBridge answer, WHEN one invocation runs, THEN it answers once and
makes no call outside the stubbed ones (a DeleteBackup, RestoreBackup or clean-up the rules forbid would meet
an empty Stubber and turn the answer into an "Unexpected" FAILED).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudhsm_backup_restore import app, polling

from tests.unit.conftest import (
    OWNER_KEY,
    PARAMETER,
    STACK_ID,
    World,
    backup,
    expect_failed,
    expect_success,
)
from tests.unit.test_create import _expect_cleanup, _handed_off, _poll

ME = hashlib.sha256("\n".join((STACK_ID, "RestoredBackup", backup()["BackupArn"])).encode()).hexdigest()[:12]
"""The digest the previous ownership record gave this resource: a record naming it made D2 count as restorer."""


def test_a_duplicate_whose_own_restore_was_refused_never_undoes(world: World, caplog: pytest.LogCaptureFixture) -> None:
    # Defect 3: D1 restored and answered; D2's RestoreBackup is refused and its later ModifyBackupAttributes
    # denied. D2 did not restore the backup, so it answers FAILED and leaves it READY: no DeleteBackup.
    world.describe(backup("PENDING_DELETION"))
    world.error("restore_backup", "CloudHsmInvalidRequestException", message="Backup is not pending deletion")
    recorded = [{"Key": OWNER_KEY, "Value": f"{ME} owner unit/RestoredBackup"}]
    world.describe(backup("READY", TagList=recorded))
    for _ in range(4):  # the first attempt and the IAM-grace retries
        world.error("modify_backup_attributes", "CloudHsmAccessDeniedException")
    props = {"BackupId": backup()["BackupId"], "OnDelete": "Delete", "NeverExpires": "true"}
    body = expect_failed(world.invoke("Create", ResourceProperties=props), "cloudhsm:ModifyBackupAttributes")
    assert "Unexpected" not in body["Reason"]
    assert "restore_not_undone" not in caplog.text  # no undo was even tried (the Stubber has no DeleteBackup)
    assert "restore_undone" not in caplog.text


DAY = 24 * 3600.0


def _signed(world: World, seconds_ago: float | None) -> dict[str, Any]:
    """A Create whose ResponseURL was presigned ``seconds_ago`` (its X-Amz-Date), or carries no X-Amz-Date (None)."""
    event = world.event("Create")
    url, world.last_path = world.capture.url(signed_at=None if seconds_ago is None else world.clock.now() - seconds_ago)
    event["ResponseURL"] = url if seconds_ago is not None else url.split("?", 1)[0]
    return event


def _deleted(world: World, seconds_ago: float, *, expiry: bool) -> dict[str, Any]:
    """PENDING_DELETION since ``seconds_ago``; DeleteTimestamp the expiry (deletion + 7 days, the API reference's
    words) or the deletion itself: the handler must be right under either reading."""
    stamp = world.clock.now() - seconds_ago + (7 * DAY if expiry else 0.0)
    return backup("PENDING_DELETION", DeleteTimestamp=datetime.fromtimestamp(stamp, tz=UTC))


@pytest.mark.parametrize("expiry", [True, False], ids=["expiry", "moment"])
def test_a_delivery_signed_before_the_backup_was_deleted_restores_nothing(world: World, expiry: bool) -> None:
    # Defect 2: the Create was answered (crhelper's timer) and rolled back, its Delete deleted the backup an hour
    # ago; the same Create arrives again (a retry, a duplicate), signed two hours ago. No RestoreBackup is stubbed.
    world.describe(_deleted(world, 3600.0, expiry=expiry))
    body = expect_failed(world.invoke("Create", event=_signed(world, 7200.0)), "deleted after CloudFormation")
    assert "Unexpected" not in body["Reason"]
    world.cloudhsm.assert_no_pending_responses()


@pytest.mark.parametrize("seconds_ago", [60.0, None], ids=["signed-after", "no-x-amz-date"])
@pytest.mark.parametrize("expiry", [True, False], ids=["expiry", "moment"])
def test_a_delivery_signed_after_the_deletion_or_undated_restores(
    world: World, expiry: bool, seconds_ago: float | None
) -> None:
    world.describe(_deleted(world, 3600.0, expiry=expiry))
    world.restored(backup("READY"))
    world.protect()
    expect_success(world.invoke("Create", event=_signed(world, seconds_ago)))


def test_a_backup_deleted_by_someone_else_while_waiting_ends_the_wait_at_once(world: World) -> None:
    # Defect 7: PENDING_DELETION without this resource having restored it is not worth waiting for.
    world.describe(backup("CREATE_IN_PROGRESS"))
    world.describe(backup("PENDING_DELETION"))
    expect_failed(world.invoke("Create"), "PENDING_DELETION", "not restored by this resource")
    assert len(world.clock.sleeps) == 1


def test_a_backup_this_resource_restored_deleted_again_while_waiting_fails_without_restoring_again(
    world: World,
) -> None:
    # Defect 7 (and 2): a new DeleteTimestamp means someone deleted it again (a Delete, the retention policy):
    # the wait ends with FAILED; no second RestoreBackup.
    world.describe(backup("PENDING_DELETION"))
    world.restored(backup("PENDING_DELETION"))
    again = backup("PENDING_DELETION", DeleteTimestamp=datetime(2026, 12, 1, tzinfo=UTC))
    world.describe(again)
    expect_failed(world.invoke("Create"), "deleted again")


def test_a_poll_that_sees_the_backup_deleted_again_does_not_restore_it(world: World) -> None:
    # Defect 2: the Delete of a parked wait deleted the backup; the next poll must not call RestoreBackup.
    poll_event = _handed_off(world)
    world.describe(backup("PENDING_DELETION", DeleteTimestamp=datetime(2026, 12, 1, tzinfo=UTC)))

    def finish(world: World) -> None:
        _expect_cleanup(world)

    _poll(world, poll_event, then=finish)
    expect_failed(world.capture.responses(world.last_path), "deleted again")


def test_the_timer_of_a_poll_neither_answers_nor_removes_the_parked_response_url(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Defect 5: a poll's guard that deletes the parameter can be killed before its answer lands; then no later
    # poll can answer. The guard of a poll leaves the wait to the poll itself (or to the next firing).
    poll_event = _handed_off(world)
    original = app.lifecycle.backups_for

    def backups_while_timer_fires(region: str | None) -> Any:
        app.helper._timeout()  # crhelper's guard fires while the poll still checks the backup
        return original(region)

    monkeypatch.setattr(app.lifecycle, "backups_for", backups_while_timer_fires)
    world.describe(backup("READY"))
    world.protect()
    _poll(world, poll_event, then=_expect_cleanup)
    expect_success(world.capture.responses(world.last_path))
    assert PARAMETER  # the one DeleteParameter is the answering poll's own (stubbed by _expect_cleanup)


def test_a_poll_with_too_little_time_left_to_answer_leaves_the_whole_wait_to_the_next_firing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Defect 5: a poll finds the backup READY with less Lambda time left than deleting the parked ResponseURL and
    # answering may take. Deleting it then could land just before Lambda stops the poll, leaving no one to answer.
    # So it takes nothing: no DeleteParameter, no RemoveTargets, no DeleteRule, no answer (none is stubbed).
    poll_event = _handed_off(world)
    original = app.lifecycle.backups_for

    def backups_after_a_slow_start(region: str | None) -> Any:
        world.clock.t += 300.0 - polling.TAKE_ANSWER_RESERVE + 1.0  # the poll's own start took nearly all its time
        return original(region)

    monkeypatch.setattr(app.lifecycle, "backups_for", backups_after_a_slow_start)
    world.describe(backup("READY"))
    _poll(world, poll_event)
    assert world.capture.responses(world.last_path) == []
    world.ssm.assert_no_pending_responses()
    world.events.assert_no_pending_responses()
    world.cloudhsm.assert_no_pending_responses()  # it did see the backup READY


@pytest.mark.parametrize("mine", [True, False], ids=["recorded-as-mine", "no-record"])
def test_a_deletion_in_the_second_the_request_was_signed_is_after_it_only_when_this_resource_owned_it(
    world: World, mine: bool
) -> None:
    """X-Amz-Date counts whole seconds. This resource's own Delete in that second came after the request (stale); a
    backup someone deleted in that second, with no record of this resource, was deleted before the template named it."""
    from cloudhsm_backup_restore.ownership import Resource

    from tests.unit.conftest import BACKUP_ARN, record_of

    deleted = _deleted(world, 0.0, expiry=True)
    if mine:
        deleted["TagList"] = [{"Key": OWNER_KEY, "Value": record_of(Resource(STACK_ID, "RestoredBackup", BACKUP_ARN))}]
    world.describe(deleted)
    event = _signed(world, 0.0)
    if mine:
        expect_failed(world.invoke("Create", event=event), "deleted after CloudFormation")
    else:
        world.restored(backup("READY"))
        world.protect()
        expect_success(world.invoke("Create", event=event))
    world.cloudhsm.assert_no_pending_responses()
