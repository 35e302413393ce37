"""Tags as a team applies them: ``Tags.of(stack)`` / ``Tags.of(backup)`` reach the restored backup through the
resource's ``Tags`` property, once per key, with aws-cdk-lib's priorities; what the handler would refuse fails synth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Environment, Stack, TagManager, Tags
from aws_cdk.assertions import Match, Template
from cloudhsm_backup_restore.properties import MAX_TAGS, parse_properties
from cloudhsm_backup_restore_cdk import RestoredBackup
from cloudhsm_backup_restore_pipeline.contract import OWNER_TAG_KEY, RESOURCE_TYPE
from cloudhsm_offline.cfn.stack import StackRunner
from cloudhsm_offline.cfn.world import OfflineWorld

from tests.cdk.matrix import recommended_flags
from tests.cdk.support import KEEP_ID, PLAIN_ID, logical_id, render, resources

ENV = Environment(account="111122223333", region="eu-west-1")


def _stack(name: str = "Tagged") -> Stack:
    """A stack in an app with the flags ``cdk init`` writes."""
    return Stack(App(context=recommended_flags()), name, env=ENV)


def _properties(stack: Stack, backup: RestoredBackup) -> dict[str, Any]:
    body = Template.from_stack(stack).to_json()["Resources"][logical_id(stack, backup.resource)]
    assert body["Type"] == RESOURCE_TYPE
    properties: dict[str, Any] = body["Properties"]
    return properties


def _tags(stack: Stack, backup: RestoredBackup) -> list[dict[str, str]] | None:
    tags: list[dict[str, str]] | None = _properties(stack, backup).get("Tags")
    return tags


def test_tags_of_the_stack_and_of_a_backup_reach_the_backups_tags_property() -> None:
    stack = _stack()
    tagged = RestoredBackup(stack, "Tagged", backup_id=PLAIN_ID)
    other = RestoredBackup(stack, "Other", backup_id=KEEP_ID)
    Tags.of(stack).add("cost-centre", "4711")
    Tags.of(stack).add("team", "platform")
    Tags.of(tagged).add("team", "hsm")  # the nearer scope's aspect runs later and wins at equal priority
    Tags.of(tagged).add("purpose", "audit restore")
    # Rendered once per key, sorted by key, as {Key, Value}: the handler's (and CloudFormation's) shape.
    assert _tags(stack, tagged) == [
        {"Key": "cost-centre", "Value": "4711"},
        {"Key": "purpose", "Value": "audit restore"},
        {"Key": "team", "Value": "hsm"},
    ]
    assert _tags(stack, other) == [{"Key": "cost-centre", "Value": "4711"}, {"Key": "team", "Value": "platform"}]
    assert tagged.tags.tag_values() == {"cost-centre": "4711", "purpose": "audit restore", "team": "hsm"}
    # The provider's resources are tagged by aws-cdk-lib as usual; the backup's CfnResource carries no second copy.
    (function,) = resources(Template.from_stack(stack).to_json(), "AWS::Lambda::Function").values()
    assert {"Key": "team", "Value": "platform"} in function["Properties"]["Tags"]
    # Tags aspects find the backup (ITaggable) and not its CfnResource, so the backup is tagged exactly once.
    assert TagManager.is_taggable(tagged)
    assert not TagManager.is_taggable(tagged.resource)
    assert not TagManager.is_taggable_v2(tagged.resource)


def test_an_untagged_backup_has_no_tags_property() -> None:
    stack = _stack()
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    Template.from_stack(stack).has_resource_properties(RESOURCE_TYPE, {"BackupId": PLAIN_ID, "Tags": Match.absent()})
    assert not backup.tags.has_tags()


def test_priority_removal_and_resource_type_filters_follow_aws_cdk_lib() -> None:
    stack = _stack()
    first = RestoredBackup(stack, "First", backup_id=PLAIN_ID)
    second = RestoredBackup(stack, "Second", backup_id=KEEP_ID)
    Tags.of(first).add("team", "hsm")
    Tags.of(stack).add("team", "platform", priority=300)  # a higher priority wins over the nearer scope
    Tags.of(stack).add("owner", "ops")
    Tags.of(second).remove("owner")  # a removal (priority 200) beats the stack's add (100) on this backup only
    Tags.of(stack).add("lambda-only", "yes", exclude_resource_types=[RESOURCE_TYPE])
    Tags.of(stack).add("backups-only", "yes", include_resource_types=[RESOURCE_TYPE])
    assert _tags(stack, first) == [
        {"Key": "backups-only", "Value": "yes"},
        {"Key": "owner", "Value": "ops"},
        {"Key": "team", "Value": "platform"},
    ]
    assert _tags(stack, second) == [{"Key": "backups-only", "Value": "yes"}, {"Key": "team", "Value": "platform"}]
    (function,) = resources(Template.from_stack(stack).to_json(), "AWS::Lambda::Function").values()
    function_keys = {tag["Key"] for tag in function["Properties"]["Tags"]}
    assert "lambda-only" in function_keys
    assert "backups-only" not in function_keys


def test_removing_every_tag_removes_the_property() -> None:
    stack = _stack()
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    Tags.of(stack).add("team", "hsm")
    Tags.of(backup).remove("team")
    assert "Tags" not in _properties(stack, backup)


def test_the_handler_parses_the_rendered_tags_as_cloudformation_sends_them() -> None:
    stack = _stack()
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    Tags.of(stack).add("team", "hsm")
    Tags.of(backup).add("Name", "Audit: 2026/12 @eu-west-1 = restore+1")  # every punctuation CloudHSM allows
    Tags.of(backup).add("empty", "")
    # CloudFormation resolves the intrinsics (ServiceToken) to strings before the handler sees the properties.
    delivered = render(_properties(stack, backup))
    assert all(isinstance(value, str) for name, value in delivered.items() if name != "Tags")
    parsed = parse_properties(delivered)
    assert dict(parsed.tags) == {"Name": "Audit: 2026/12 @eu-west-1 = restore+1", "empty": "", "team": "hsm"}
    assert parsed.backup_id == PLAIN_ID


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("aws:cloudformation:stack-name", "mine", "keys starting with aws: (AWS's) or cloudhsm-backup-restore:"),
        ("AWS:Team", "hsm", "keys starting with aws: (AWS's)"),
        ("cloudhsm-backup-restore:owner", "me", "or cloudhsm-backup-restore: (the ownership record's) are reserved"),
        ("team", "a,b", "a tag's Value must be a string of 0-256 letters, digits, spaces and _.:/=+-@"),
        ("team#1", "hsm", "a tag's Key must be a string of 1-128 letters"),
        ("k" * 129, "hsm", "a tag's Key must be a string of 1-128"),
    ],
)
def test_a_tag_the_handler_would_refuse_fails_synth_naming_tags(key: str, value: str, rule: str) -> None:
    stack = _stack()
    RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    Tags.of(stack).add(key, value)
    with pytest.raises(RuntimeError) as raised:
        App.of(stack).synth()  # type: ignore[union-attr]
    message = str(raised.value)
    assert "[Tagged/Backup] RestoredBackup Tags: " in message
    assert rule in message
    assert f'exclude_resource_types=["{RESOURCE_TYPE}"]' in message


def test_more_tags_than_a_backup_holds_fail_synth() -> None:
    stack = _stack()
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    for number in range(MAX_TAGS - 1):
        Tags.of(backup).add(f"k{number}", "v")
    App.of(stack).synth()  # type: ignore[union-attr]  # 49: the most a backup takes beside the ownership record
    crowded = _stack("Crowded")
    backup = RestoredBackup(crowded, "Backup", backup_id=PLAIN_ID)
    for number in range(MAX_TAGS - 2):
        Tags.of(backup).add(f"k{number}", "v")
    Tags.of(crowded).add("from-a-parameter", CfnParameter(crowded, "Value").value_as_string)  # a token counts too
    Tags.of(crowded).add("one-too-many", "v")
    with pytest.raises(RuntimeError, match=r"\[Crowded/Backup\] RestoredBackup Tags must be a list of at most 49"):
        App.of(crowded).synth()  # type: ignore[union-attr]


def test_a_token_value_is_rendered_and_left_to_deploy_time() -> None:
    stack = _stack()
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    Tags.of(stack).add("environment", CfnParameter(stack, "Environment").value_as_string)
    assert _tags(stack, backup) == [{"Key": "environment", "Value": {"Ref": "Environment"}}]


def _tag_app(outdir: Path, tags: dict[str, str]) -> tuple[RestoredBackup, Path]:
    """The app a team deploys, then edits: a stack tag for every resource, the rest on the backup."""
    app = App(outdir=str(outdir), context=recommended_flags())
    stack = Stack(app, "TaggedRestores")
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    Tags.of(stack).add("team", tags.pop("team"))
    for key, value in tags.items():
        Tags.of(backup).add(key, value)
    app.synth()
    return backup, outdir / "TaggedRestores.template.json"


@pytest.mark.slow
def test_the_tags_reach_the_backup_and_an_update_removes_only_its_own(tmp_path: Path) -> None:
    """Under the offline CloudFormation simulator: Create tags the backup, Update changes and drops what the old
    properties set (never an operator's tag), Delete leaves every user tag."""
    backup, first = _tag_app(tmp_path / "v1", {"team": "platform", "purpose": "audit", "ticket": "HSM-1"})
    _, second = _tag_app(tmp_path / "v2", {"team": "hsm", "purpose": "audit"})

    def user_tags() -> dict[str, str]:
        tags = world.emulator.account.backup(PLAIN_ID).get("TagList") or []
        return {tag["Key"]: tag["Value"] for tag in tags if tag["Key"] != OWNER_TAG_KEY}

    with OfflineWorld(code_dir=backup.provider.staged_code_dir, restore_seconds=1) as world:
        world.emulator.account.add_backup(PLAIN_ID)
        runner = StackRunner(world.simulator, first, {})
        created = runner.create()
        assert created.ok, created.errors
        assert user_tags() == {"team": "platform", "purpose": "audit", "ticket": "HSM-1"}
        world.emulator.account.store.tag(PLAIN_ID, [{"Key": "ops-note", "Value": "checked"}])  # an operator's own tag
        updated = runner.update({}, second)
        assert updated.ok, updated.errors
        assert user_tags() == {"team": "hsm", "purpose": "audit", "ops-note": "checked"}
        deleted = runner.delete()
        assert deleted.ok, deleted.errors
        backup_after = world.emulator.account.backup(PLAIN_ID)
        assert backup_after["BackupState"] == "READY"  # RemovalPolicy.RETAIN
        assert user_tags() == {"team": "hsm", "purpose": "audit", "ops-note": "checked"}
        assert all(tag["Key"] != OWNER_TAG_KEY for tag in backup_after.get("TagList") or [])
        assert world.verify() == []
