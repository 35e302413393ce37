"""Stack updates of a synthesized app, run under the offline CloudFormation simulator: a token backup id replaced by
a parameter update, and a renamed construct. IAM is not emulated offline, so each grant's lifetime is proven from
the synthesized template and CloudFormation's documented update order: a resource whose immutable property
(``ManagedPolicyName``) changes is replaced, the replacement created in the update phase and the old one deleted in
the cleanup phase after the resources that depend on it (reverse dependency order)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Stack
from cloudhsm_backup_restore_cdk import OnDelete, RestoredBackup
from cloudhsm_backup_restore_pipeline.contract import DELETE_ACTIONS, RESOURCE_TYPE
from cloudhsm_offline.cfn.stack import StackRunner
from cloudhsm_offline.cfn.world import OfflineWorld

from tests.cdk.matrix import backup_id, evaluate
from tests.cdk.support import as_list, logical_id

OLD = "backup-tokenoldaaaaa"
NEW = "backup-tokennewaaaaa"
ISSUE_9 = importlib.util.find_spec("cloudhsm_backup_restore.ownership") is not None
"""The ownership record (restore-safety issue 9) decides who may delete a backup after a rename."""


def _synth(tmp_path: Path, build: Any) -> tuple[Stack, Any, dict[str, Any], Path]:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Updates")
    built = build(stack)
    app.synth()
    path = tmp_path / "cdk.out" / "Updates.template.json"
    return stack, built, json.loads(path.read_text(encoding="utf-8")), path


def _policy_at(template: dict[str, Any], logical: str, parameters: dict[str, str]) -> tuple[str, list[Any]]:
    """A managed policy's name and statements as CloudFormation resolves them with ``parameters``."""
    properties = template["Resources"][logical]["Properties"]
    name = evaluate(properties["ManagedPolicyName"], parameters)
    return name, evaluate(properties["PolicyDocument"]["Statement"], parameters)


def _deletable(statements: list[Any]) -> set[str]:
    """Backup ARNs on which the statements allow DeleteBackup."""
    return {
        arn.rsplit("/", 1)[1]
        for statement in statements
        if set(DELETE_ACTIONS) <= set(as_list(statement["Action"]))
        for arn in as_list(statement["Resource"])
    }


@pytest.mark.slow
def test_token_backup_id_replaced_by_a_parameter_update_keeps_its_delete_grant_until_cleanup(tmp_path: Path) -> None:
    def build(stack: Stack) -> tuple[CfnParameter, RestoredBackup]:
        parameter = CfnParameter(stack, "BackupId", allowed_pattern="backup-[2-7a-zA-Z]{11,16}")
        backup = RestoredBackup(stack, "Backup", backup_id=parameter.value_as_string, on_delete=OnDelete.DELETE)
        return parameter, backup

    stack, (parameter, backup), template, path = _synth(tmp_path, build)
    name = logical_id(stack, parameter)
    policy = logical_id(stack, backup.policy)
    resource = logical_id(stack, backup.resource)

    # The template: the backup's policy is named after the parameter's value, so a new value replaces it ...
    old_name, old_statements = _policy_at(template, policy, {name: OLD})
    new_name, new_statements = _policy_at(template, policy, {name: NEW})
    assert old_name != new_name
    assert (_deletable(old_statements), _deletable(new_statements)) == ({OLD}, {NEW})
    # ... and the custom resource depends on it: the old resource is deleted in cleanup before the old policy.
    assert policy in template["Resources"][resource]["DependsOn"]

    # The simulator: CloudFormation's Update, then the cleanup Delete of the old backup with the old properties.
    with OfflineWorld(speed=20.0, code_dir=backup.provider.staged_code_dir, restore_seconds=1) as world:
        world.emulator.add_backup(OLD)
        world.emulator.add_backup(NEW)
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
        assert world.emulator.backup(NEW)["BackupState"] == "READY"
        assert world.emulator.backup(OLD)["BackupState"] == "PENDING_DELETION"
        assert world.verify() == []


def test_changing_one_literal_backup_replaces_only_its_own_policy(tmp_path: Path) -> None:
    """Every backup is costed at its longest ARN, so one new id never moves the others to other policies."""

    def build(first: str) -> list[str]:
        app = App(outdir=str(tmp_path / first))
        stack = Stack(app, "Many")
        backups = [RestoredBackup(stack, f"B{n}", backup_id=first if n == 0 else backup_id(n)) for n in range(150)]
        template = app.synth().get_stack_by_name("Many").template
        return [json.dumps(template["Resources"][logical_id(stack, b.policy)]["Properties"]) for b in backups]

    before, after = build(backup_id(0)), build("backup-zzzzzzzzzzzzzzzz")
    changed = {index for index, (old, new) in enumerate(zip(before, after, strict=True)) if old != new}
    assert len(set(before)) >= 2  # 150 backups need more than one policy
    assert changed == {index for index, policy in enumerate(before) if policy == before[0]}
    assert json.loads(after[0])["ManagedPolicyName"] != json.loads(before[0])["ManagedPolicyName"]


@pytest.mark.slow
@pytest.mark.xfail(not ISSUE_9, reason="needs the ownership record of the restore-safety issue (issue 9)", strict=True)
def test_renamed_construct_leaves_the_backup_ready_and_owned_by_the_new_resource(tmp_path: Path) -> None:
    """CloudFormation creates the renamed resource in the update phase and deletes the old one in cleanup."""
    keep = "backup-renameaaaaaa"

    def template_for(construct_id: str) -> tuple[str, Path, Any]:
        out = tmp_path / construct_id
        app = App(outdir=str(out))
        stack = Stack(app, "Renamed")
        backup = RestoredBackup(stack, construct_id, backup_id=keep, on_delete=OnDelete.DELETE)
        app.synth()
        return logical_id(stack, backup.resource), out / "Renamed.template.json", backup

    old_logical, old_path, old_backup = template_for("Before")
    new_logical, new_path, _ = template_for("After")
    assert old_logical != new_logical
    with OfflineWorld(speed=20.0, code_dir=old_backup.provider.staged_code_dir, restore_seconds=1) as world:
        world.emulator.add_backup(keep)
        assert StackRunner(world.simulator, old_path, {}).create().ok
        renamed = StackRunner(world.simulator, new_path, {})
        created = world.simulator.create(new_logical, renamed.properties_of(new_logical), RESOURCE_TYPE)
        assert created.status == "SUCCESS", created.reason
        cleanup = world.simulator.delete(old_logical)
        assert cleanup.status == "SUCCESS", cleanup.reason
        backup = world.emulator.backup(keep)
        assert backup["BackupState"] == "READY"
        tags = {tag["Key"]: tag["Value"] for tag in backup.get("TagList", [])}
        owner = next((value for key, value in tags.items() if key.endswith(":owner")), "")
        assert new_logical in owner
        assert world.verify() == []
