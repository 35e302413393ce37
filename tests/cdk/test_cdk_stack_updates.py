"""Stack updates of a synthesized app, run under the offline CloudFormation simulator: a token backup id replaced by
a parameter update, and a renamed construct. IAM is not emulated offline, so each grant's lifetime is proven from
the synthesized template and CloudFormation's documented update order: the backup policies are updated in place in
the update phase (no ``ManagedPolicyName``, so never replaced), and the replaced resource's Delete runs in the
cleanup phase, covered by the provider policy's ``OwnedBackups`` statement (any backup carrying the owner tag)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, RemovalPolicy, Stack
from cloudhsm_backup_restore_cdk import RestoredBackup
from cloudhsm_backup_restore_pipeline.contract import DELETE_ACTIONS, OWNER_TAG_KEY, RESOURCE_TYPE
from cloudhsm_offline.cfn.stack import StackRunner
from cloudhsm_offline.cfn.world import OfflineWorld

from tests.cdk.matrix import backup_id, evaluate
from tests.cdk.support import as_list, logical_id

OLD = "backup-tokenoldaaaaa"
NEW = "backup-tokennewaaaaa"


def _synth(tmp_path: Path, build: Any) -> tuple[Stack, Any, dict[str, Any], Path]:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Updates")
    built = build(stack)
    app.synth()
    path = tmp_path / "cdk.out" / "Updates.template.json"
    return stack, built, json.loads(path.read_text(encoding="utf-8")), path


def _policy_at(template: dict[str, Any], logical: str, parameters: dict[str, str]) -> list[Any]:
    """A managed policy's statements as CloudFormation resolves them with ``parameters``."""
    properties = template["Resources"][logical]["Properties"]
    assert "ManagedPolicyName" not in properties  # so never replaced: updated in place
    statements: list[Any] = evaluate(properties["PolicyDocument"]["Statement"], parameters)
    return statements


def _deletable(statements: list[Any]) -> set[str]:
    """Backup ARNs on which the statements allow DeleteBackup."""
    return {
        arn.rsplit("/", 1)[1]
        for statement in statements
        if set(DELETE_ACTIONS) <= set(as_list(statement["Action"])) and "Condition" not in statement
        for arn in as_list(statement["Resource"])
    }


@pytest.mark.slow
def test_token_backup_id_replaced_by_a_parameter_update_keeps_its_delete_grant_until_cleanup(tmp_path: Path) -> None:
    def build(stack: Stack) -> tuple[CfnParameter, RestoredBackup]:
        parameter = CfnParameter(stack, "BackupId", allowed_pattern="backup-[2-7a-zA-Z]{11,16}")
        backup = RestoredBackup(
            stack, "Backup", backup_id=parameter.value_as_string, removal_policy=RemovalPolicy.DESTROY
        )
        return parameter, backup

    stack, (parameter, backup), template, path = _synth(tmp_path, build)
    name = logical_id(stack, parameter)
    (slot,) = backup.provider.backup_policies
    policy = logical_id(stack, slot)
    resource = logical_id(stack, backup.resource)

    # The template: the backup policy is updated in place to the new value before the custom resource's Update ...
    old_statements = _policy_at(template, policy, {name: OLD})
    new_statements = _policy_at(template, policy, {name: NEW})
    assert (_deletable(old_statements), _deletable(new_statements)) == ({OLD}, {NEW})
    assert policy in template["Resources"][resource]["DependsOn"]
    # ... and the cleanup Delete of OLD, whose ARN has left it, is granted by the owner tag the handler wrote on OLD.
    provider_policy = logical_id(stack, backup.provider.policy)
    assert provider_policy in template["Resources"][resource]["DependsOn"]
    (owned,) = [s for s in _policy_at(template, provider_policy, {}) if s.get("Sid") == "OwnedBackups"]
    assert set(DELETE_ACTIONS) <= set(as_list(owned["Action"]))
    assert owned["Condition"] == {"Null": {f"aws:ResourceTag/{OWNER_TAG_KEY}": "false"}}

    # The simulator: CloudFormation's Update, then the cleanup Delete of the old backup.
    with OfflineWorld(code_dir=backup.provider.staged_code_dir, restore_seconds=1) as world:
        world.emulator.account.add_backup(OLD)
        world.emulator.account.add_backup(NEW)
        runner = StackRunner(world.simulator, path, {name: OLD})
        created = runner.create()
        assert created.ok, created.errors
        updated = runner.update({name: NEW})
        assert updated.ok, updated.errors
        # CloudFormation deletes the replaced resource only in cleanup, after the whole update succeeded.
        update, cleanup = updated.outcomes
        assert (update.event["RequestType"], cleanup.role) == ("Update", "cleanup")
        assert cleanup.event["RequestType"] == "Delete"
        assert cleanup.event["ResourceProperties"]["BackupId"] == OLD
        assert cleanup.status == "SUCCESS", cleanup.reason
        assert world.emulator.account.backup(NEW)["BackupState"] == "READY"
        assert world.emulator.account.backup(OLD)["BackupState"] == "PENDING_DELETION"
        assert any(tag["Key"] == OWNER_TAG_KEY for tag in world.emulator.account.backup(NEW).get("TagList", []))
        assert world.verify() == []


def _policies(tmp_path: Path, name: str, ids: dict[int, str]) -> dict[str, dict[str, Any]]:
    """Managed policy logical id -> its properties, for RestoredBackups B<number> with ``ids``."""
    app = App(outdir=str(tmp_path / name))
    stack = Stack(app, "Many")
    for number, value in ids.items():
        RestoredBackup(stack, f"B{number}", backup_id=value)
    template = app.synth().get_stack_by_name("Many").template
    return {
        logical: body["Properties"]
        for logical, body in template["Resources"].items()
        if body["Type"] == "AWS::IAM::ManagedPolicy"
    }


@pytest.mark.parametrize("change", ["edit", "remove", "add"])
def test_changing_one_literal_backup_replaces_no_policy(tmp_path: Path, change: str) -> None:
    """Any change is an in-place update: same logical ids, no ManagedPolicyName, the same Description (150 backups)."""
    ids = {number: backup_id(number) for number in range(150)}
    before = _policies(tmp_path, "before", ids)
    if change == "edit":
        ids[7] = "backup-zzzzzzzzzzzzzzzz"
    elif change == "remove":
        del ids[7]
    else:
        ids[150] = backup_id(150)
    after = _policies(tmp_path, "after", ids)
    assert len(before) >= 3  # the provider policy and more than one backup policy
    assert before.keys() == after.keys()
    for logical in before:
        for replacing in ("ManagedPolicyName", "Path", "Description"):
            assert before[logical].get(replacing) == after[logical].get(replacing)
        assert "ManagedPolicyName" not in after[logical]
    assert any(before[logical] != after[logical] for logical in before)


@pytest.mark.slow
def test_renamed_construct_leaves_the_backup_ready_and_owned_by_the_new_resource(tmp_path: Path) -> None:
    """CloudFormation creates the renamed resource in the update phase and deletes the old one in cleanup; the
    ownership record (issue 9's handler) keeps the old resource's Delete from deleting the new one's backup."""
    keep = "backup-renameaaaaaa"

    def template_for(construct_id: str) -> tuple[str, Path, Any]:
        out = tmp_path / construct_id
        app = App(outdir=str(out))
        stack = Stack(app, "Renamed")
        backup = RestoredBackup(stack, construct_id, backup_id=keep, removal_policy=RemovalPolicy.DESTROY)
        app.synth()
        return logical_id(stack, backup.resource), out / "Renamed.template.json", backup

    old_logical, old_path, old_backup = template_for("Before")
    new_logical, new_path, _ = template_for("After")
    assert old_logical != new_logical
    with OfflineWorld(code_dir=old_backup.provider.staged_code_dir, restore_seconds=1) as world:
        world.emulator.account.add_backup(keep)
        assert StackRunner(world.simulator, old_path, {}).create().ok
        renamed = StackRunner(world.simulator, new_path, {})
        created = world.simulator.create(new_logical, renamed.properties_of(new_logical), RESOURCE_TYPE)
        assert created.status == "SUCCESS", created.reason
        cleanup = world.simulator.delete(old_logical)
        assert cleanup.status == "SUCCESS", cleanup.reason
        backup = world.emulator.account.backup(keep)
        assert backup["BackupState"] == "READY"
        tags = {tag["Key"]: tag["Value"] for tag in backup.get("TagList", [])}
        owner = next((value for key, value in tags.items() if key.endswith(":owner")), "")
        assert new_logical in owner
        assert world.verify() == []
