"""Stacks of two and three custom resources follow CloudFormation's update semantics.

Replaced resources are deleted only in the cleanup phase after the whole update succeeded; on a failure
every resource already updated gets an Update back to its old properties, resources this update created
are deleted, new replacements are deleted in the rollback's cleanup, and the previous Outputs remain;
an Output whose Fn::GetAtt fails fails the stack. (AWS CloudFormation User Guide: "Update behaviors of
stack resources", "Stack status codes": UPDATE_COMPLETE_CLEANUP_IN_PROGRESS,
UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS.) Physical ids are whatever the provider returns: the
fixture handler's ``id-from-props`` mode answers with the ``Id`` property.
"""

from __future__ import annotations

from cloudhsm_offline.cfn.outcome import Outcome
from cloudhsm_offline.cfn.stack import StackRun, StackRunner

from tests.functional.conftest import WorldFactory, assert_clean

TEMPLATE = """
Parameters:
  AId: {Type: String, Default: phys-a1}
  BNote: {Type: String, Default: one}
  CMode: {Type: String, Default: id-from-props}
  WithD: {Type: String, Default: "no"}
  ReadMissing: {Type: String, Default: "no"}
Conditions:
  HasD: !Equals [!Ref WithD, "yes"]
  Missing: !Equals [!Ref ReadMissing, "yes"]
Resources:
  A:
    Type: Custom::Fixture
    Properties: {ServiceToken: !ImportValue provider-ServiceToken, Mode: id-from-props, Id: !Ref AId}
  B:
    Type: Custom::Fixture
    Properties: {ServiceToken: !ImportValue provider-ServiceToken, Mode: id-from-props, Id: phys-b, Note: !Ref BNote, After: !Ref A}
  D:
    Type: Custom::Fixture
    Condition: HasD
    Properties: {ServiceToken: !ImportValue provider-ServiceToken, Mode: id-from-props, Id: phys-d}
  C:
    Type: Custom::Fixture
    Properties: {ServiceToken: !ImportValue provider-ServiceToken, Mode: !Ref CMode, Id: phys-c, After: !Ref B}
Outputs:
  AId: {Value: !GetAtt A.Id}
  Probe: {Value: !If [Missing, !GetAtt A.NotThere, !GetAtt B.Greeting]}
"""
TWO = TEMPLATE[: TEMPLATE.index("  D:\n")] + TEMPLATE[TEMPLATE.index("Outputs:") :]
"""A and B only (B refers to A)."""


def _steps(run: StackRun) -> list[tuple[str, str, str, str, str | None]]:
    """(request type, logical id, role, status, the event's PhysicalResourceId) of every operation, in order."""
    flat: list[Outcome] = [item for outcome in run.outcomes for item in outcome.flatten()]
    return [(o.operation, o.logical_id, o.role, o.status, o.event.get("PhysicalResourceId")) for o in flat]


def _outputs(run: StackRun) -> dict[str, str | None]:
    return {o.name: o.value for o in run.outputs}


def test_two_replacements_are_deleted_only_after_the_whole_update(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    runner = StackRunner(world.simulator, TWO)
    assert runner.create().status == "CREATE_COMPLETE"
    run = runner.update({"AId": "phys-a2"})  # A is replaced; B's Ref to A changes, so B is updated in place
    assert _steps(run) == [
        ("Update", "A", "request", "SUCCESS", "phys-a1"),
        ("Update", "B", "request", "SUCCESS", "phys-b"),
        ("Delete", "A", "cleanup", "SUCCESS", "phys-a1"),
    ]
    assert run.status == "UPDATE_COMPLETE"
    assert run.ok
    assert _outputs(run) == {"AId": "phys-a2", "Probe": "hello"}
    assert world.simulator.resources["A"].physical_id == "phys-a2"
    assert runner.delete().ok
    assert_clean(world)


def test_a_failure_rolls_back_every_updated_resource_and_deletes_the_new_replacement(
    fixture_world: WorldFactory,
) -> None:
    world = fixture_world()
    runner = StackRunner(world.simulator, TEMPLATE)
    created = runner.create()
    assert created.ok
    before = _outputs(created)
    run = runner.update({"AId": "phys-a2", "BNote": "two", "CMode": "failed"})
    assert _steps(run) == [
        ("Update", "A", "request", "SUCCESS", "phys-a1"),
        ("Update", "B", "request", "SUCCESS", "phys-b"),
        ("Update", "C", "request", "FAILED", "phys-c"),
        ("Update", "C", "update-rollback", "SUCCESS", "phys-c"),
        ("Update", "B", "update-rollback", "SUCCESS", "phys-b"),
        ("Update", "A", "update-rollback", "SUCCESS", "phys-a2"),
        ("Delete", "A", "cleanup", "SUCCESS", "phys-a2"),  # the new replacement; phys-a1 is never deleted
    ]
    rollbacks = [o for o in run.outcomes if o.role == "update-rollback"]
    assert rollbacks[0].event["ResourceProperties"]["Note"] == "one"
    assert rollbacks[0].event["OldResourceProperties"]["Note"] == "two"
    assert rollbacks[1].event["ResourceProperties"]["Id"] == "phys-a1"
    assert run.status == "UPDATE_ROLLBACK_COMPLETE"
    assert not run.ok
    assert _outputs(run) == before  # the previous Outputs remain
    assert runner.physical["A"] == "phys-a1"

    # The stack is back on its old resources: the next update starts from them.
    again = runner.update({"AId": "phys-a3"})
    assert _steps(again)[0] == ("Update", "A", "request", "SUCCESS", "phys-a1")
    assert again.outcomes[0].event["OldResourceProperties"]["Id"] == "phys-a1"
    assert ("Delete", "A", "cleanup", "SUCCESS", "phys-a1") in _steps(again)
    assert again.ok
    assert runner.delete().ok
    assert_clean(world)


def test_a_resource_created_by_a_failed_update_is_deleted_in_the_rollback(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    runner = StackRunner(world.simulator, TEMPLATE)
    assert runner.create().ok
    run = runner.update({"WithD": "yes", "CMode": "failed"})
    assert _steps(run) == [
        ("Create", "D", "request", "SUCCESS", None),
        ("Update", "C", "request", "FAILED", "phys-c"),
        ("Update", "C", "update-rollback", "SUCCESS", "phys-c"),
        ("Delete", "D", "rollback", "SUCCESS", "phys-d"),
    ]
    assert "D" not in runner.physical
    assert "D" not in world.simulator.resources
    assert run.status == "UPDATE_ROLLBACK_COMPLETE"


def test_an_output_whose_getatt_fails_fails_the_create(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    run = StackRunner(world.simulator, TWO, {"ReadMissing": "yes"}).create()
    assert _steps(run) == [
        ("Create", "A", "request", "SUCCESS", None),
        ("Create", "B", "request", "SUCCESS", None),
        ("Delete", "B", "rollback", "SUCCESS", "phys-b"),
        ("Delete", "A", "rollback", "SUCCESS", "phys-a1"),
    ]
    assert run.status == "ROLLBACK_COMPLETE"
    assert any("Vendor response doesn't contain NotThere key" in error for error in run.errors)
    assert world.simulator.resources == {}
    assert [o.name for o in run.outputs if o.value is not None] == []  # a ROLLBACK_COMPLETE stack shows no values
    assert [o.name for o in run.outputs if o.error] != []  # the Output that failed the stack still says why


def test_an_output_whose_getatt_fails_rolls_the_update_back_keeping_the_outputs(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    runner = StackRunner(world.simulator, TWO)
    before = _outputs(runner.create())
    run = runner.update({"AId": "phys-a2", "ReadMissing": "yes"})
    roles = [(operation, name, role) for operation, name, role, _status, _id in _steps(run)]
    assert roles == [
        ("Update", "A", "request"),
        ("Update", "B", "request"),
        ("Update", "B", "update-rollback"),
        ("Update", "A", "update-rollback"),
        ("Delete", "A", "cleanup"),
    ]
    assert run.status == "UPDATE_ROLLBACK_COMPLETE"
    assert _outputs(run) == before
    assert any("NotThere" in error for error in run.errors)


def test_a_resource_the_template_no_longer_selects_is_deleted_in_cleanup(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    runner = StackRunner(world.simulator, TEMPLATE, {"WithD": "yes"})
    assert [o.logical_id for o in runner.create().outcomes] == ["A", "B", "D", "C"]
    run = runner.update({"WithD": "no", "BNote": "two"})
    assert _steps(run) == [
        ("Update", "B", "request", "SUCCESS", "phys-b"),
        ("Delete", "D", "cleanup", "SUCCESS", "phys-d"),  # after every update succeeded
    ]
    assert run.status == "UPDATE_COMPLETE"
    assert "D" not in runner.physical
    assert runner.delete().ok
    assert_clean(world)
