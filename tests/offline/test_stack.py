"""The template runner behaves as CloudFormation does: list parameters, failed rollbacks, edited templates.

GIVEN a world running the fixture handlers (chosen by each resource's ``Mode``), WHEN a StackRunner
creates, updates and deletes a template, THEN the stack statuses, the events sent and the resources
left are CloudFormation's (AWS CloudFormation User Guide: "Parameters", "Stack status codes").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cloudhsm_offline.cfn.stack import StackRunner
from cloudhsm_offline.cfn.template import TemplateError, TemplateResolver, check_runnable, load_template

from tests.functional.conftest import WorldFactory

pytestmark = pytest.mark.slow

TOKEN = "      ServiceToken: !ImportValue provider-ServiceToken\n"


def _props(outcome_data: dict[str, str]) -> dict[str, str]:
    return dict(json.loads(outcome_data["Props"]))


def test_comma_delimited_and_list_parameters_are_lists(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    template = (
        "Transform: AWS::LanguageExtensions\n"  # Fn::Length is one of its functions
        "Parameters:\n"
        "  Ids: {Type: CommaDelimitedList, Default: 'backup-a, backup-b'}\n"
        "  Subnets: {Type: 'List<AWS::EC2::Subnet::Id>', Default: 'subnet-1,subnet-2,subnet-3'}\n"
        "Resources:\n  R:\n    Type: Custom::Fixture\n    Properties:\n"
        + TOKEN
        + "      First: !Select [0, !Ref Ids]\n"
        "      Joined: !Join ['+', !Ref Subnets]\n      Count: {Fn::Length: !Ref Subnets}\n"
    )
    runner = StackRunner(world.simulator, template, {})
    run = runner.create()
    assert run.status == "CREATE_COMPLETE", run.errors
    props = _props(run.outcomes[0].data)
    # CloudFormation trims each member of a CommaDelimitedList; scalars reach the function as strings.
    assert (props["First"], props["Joined"], props["Count"]) == ("backup-a", "subnet-1+subnet-2+subnet-3", "3")


def test_a_rollback_whose_delete_fails_ends_rollback_failed_and_keeps_the_resource(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    template = (
        "Resources:\n  Kept:\n    Type: Custom::Fixture\n    Properties:\n" + TOKEN + "      Mode: fail-delete\n"
        "  Broken:\n    Type: Custom::Fixture\n    DependsOn: Kept\n    Properties:\n" + TOKEN + "      Mode: failed\n"
    )
    runner = StackRunner(world.simulator, template, {})
    run = runner.create()
    assert run.status == "ROLLBACK_FAILED"
    assert "rollback: Kept: Delete refused by the fixture" in run.errors
    assert [(o.logical_id, o.operation, o.status) for o in run.outcomes if o.role == "rollback"] == [
        ("Kept", "Delete", "FAILED")
    ]
    assert list(runner.applied) == ["Kept"]  # CloudFormation keeps what it could not delete


def test_a_failed_update_rollback_ends_update_rollback_failed_naming_the_resource(fixture_world: WorldFactory) -> None:
    world = fixture_world()
    template = (
        "Parameters:\n  Gen: {Type: Number, Default: 1}\n  Second: {Type: String, Default: ok}\n"
        "Resources:\n  First:\n    Type: Custom::Fixture\n    Properties:\n" + TOKEN + "      Mode: no-going-back\n"
        "      Gen: !Ref Gen\n  Then:\n    Type: Custom::Fixture\n    DependsOn: First\n    Properties:\n"
        + TOKEN
        + "      Mode: !Ref Second\n"
    )
    runner = StackRunner(world.simulator, template, {})
    assert runner.create().status == "CREATE_COMPLETE"
    run = runner.update({"Gen": "2", "Second": "failed"})
    assert run.status == "UPDATE_ROLLBACK_FAILED"
    assert any(error.startswith("rollback: First: ") for error in run.errors), run.errors
    undo = [o for o in run.outcomes if o.role == "update-rollback"]
    assert [(o.logical_id, o.status) for o in undo] == [("First", "FAILED")]


def test_an_update_applies_an_edited_template_more_than_once(fixture_world: WorldFactory, tmp_path: Path) -> None:
    world = fixture_world()
    resource = "  {name}:\n    Type: Custom::Fixture\n    Properties:\n" + TOKEN + "      Gen: '{gen}'\n"
    first = "Resources:\n" + resource.format(name="Old", gen=1)
    second = "Resources:\n" + resource.format(name="Old", gen=1) + resource.format(name="New", gen=1)
    third = "Resources:\n" + resource.format(name="New", gen=2)
    (tmp_path / "second.yaml").write_text(second, encoding="utf-8")
    runner = StackRunner(world.simulator, first, {})
    assert runner.create().status == "CREATE_COMPLETE"

    added = runner.update({}, tmp_path / "second.yaml")
    changed = runner.update({}, third)

    assert added.status == changed.status == "UPDATE_COMPLETE"
    assert [(o.logical_id, o.operation) for o in added.outcomes] == [("New", "Create")]
    assert [(o.logical_id, o.operation, o.role) for o in changed.outcomes] == [
        ("New", "Update", "request"),
        ("Old", "Delete", "cleanup"),  # the edited template no longer has it
    ]
    assert list(runner.applied) == ["New"]
    assert _props(changed.outcomes[0].data)["Gen"] == "2"


def test_an_edited_template_the_runner_cannot_run_is_refused_before_anything_changes(
    fixture_world: WorldFactory,
) -> None:
    world = fixture_world()
    template = "Resources:\n  R:\n    Type: Custom::Fixture\n    Properties:\n" + TOKEN
    runner = StackRunner(world.simulator, template, {})
    assert runner.create().status == "CREATE_COMPLETE"
    calls = len(world.function.records)
    run = runner.update({}, template + "      Zones: !GetAZs ''\n")
    assert run.status == "UPDATE_ROLLBACK_COMPLETE"
    assert "Fn::GetAZs is not supported" in run.errors[0]
    assert len(world.function.records) == calls


CHECKED = (
    "Parameters:\n  Ids: {Type: CommaDelimitedList, Default: backup-only}\n"
    "Mappings:\n  ByRegion:\n    us-east-1: {Id: backup-east}\n"
    "Conditions:\n  East: !Equals [!Ref 'AWS::Region', us-east-1]\n"
    "Resources:\n  R:\n    Type: Custom::Fixture\n    Properties:\n"
    + TOKEN
    + "      BackupId: !FindInMap [ByRegion, !Ref 'AWS::Region', Id]\n"
    "      Second: !If [East, !Select [1, !Ref Ids], !Select [0, !Ref Ids]]\n"
)


def test_the_check_walks_every_branch_and_leaves_to_the_run_what_only_the_stack_knows() -> None:
    # The region decides the mapping key and the condition: unknown before the stack runs, so not refused;
    # the Select on a one-item list sits in a branch the check cannot rule out, so not refused either.
    check_runnable(load_template(CHECKED), {})
    broken = CHECKED.replace("!Select [0, !Ref Ids]", "!Ref Nope")
    with pytest.raises(
        TemplateError, match=r"^Resources\.R\.Properties\.Second\.Fn::If\[2\]\.Ref: Ref to unknown name Nope"
    ):
        check_runnable(load_template(broken), {})


def test_a_resource_depends_on_the_resources_it_references_not_on_names_that_look_alike() -> None:
    resources = "".join(f"  {name}:\n    Type: Custom::Fixture\n    Properties:\n" + TOKEN for name in ("B", "Bee"))
    resolver = TemplateResolver(
        None, load_template("Conditions:\n  Never: !Equals [a, b]\nResources:\n" + resources), {}
    )
    assert resolver.references({"Fn::Sub": "${Bee}-x"}) == {"Bee"}  # "${B" starts it, yet B is not referenced
    assert resolver.references({"Fn::If": ["Never", {"Fn::GetAtt": "B.Id"}, "plain"]}) == {"B"}  # either branch counts
