"""The construct's public surface is what docs/cdk.md documents: the provider's internals (how backups are packed
into policies, how the default provider is found) stay private, so they can change without breaking an app."""

from __future__ import annotations

import re
from pathlib import Path

import cloudhsm_backup_restore_cdk
import pytest
from aws_cdk import App, Stack
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider
from constructs import Construct

from tests.cdk.support import PLAIN_ID

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cdk.md"
INTERNAL = (
    "of",
    "has_room",
    "grant_backup",
    "with_room",
    "settings",
    "shared_grants",
    "legacy_policy",
    "backup_grants",
)
"""Names issue 16 found public that are the provider's internals."""


def _documented(section_heading: str) -> set[str]:
    """The snake_case names in backticks in the "Read-only attributes:" paragraph of a docs/cdk.md section, outside
    the parenthesised remarks."""
    page = DOCS.read_text(encoding="utf-8")
    section = page[page.index(section_heading) :]
    paragraph = section[section.index("Read-only attributes:") :].split("\n\n", 1)[0]
    listed = re.sub(r"\s\([^()]*\)", "", paragraph)
    return set(re.findall(r"`([a-z][a-z0-9_]*)(?:\([^`]*\))?`", listed))


def _public(construct: Construct) -> set[str]:
    """What a user reaches on the object without an underscore, beyond what every Construct has."""
    return {name for name in dir(construct) if not name.startswith("_")} - set(dir(Construct))


@pytest.fixture(scope="module")
def backup() -> RestoredBackup:
    return RestoredBackup(Stack(App(), "Surface"), "Backup", backup_id=PLAIN_ID)


def test_restored_backup_exposes_exactly_what_is_documented(backup: RestoredBackup) -> None:
    documented = _documented("## Restore a backup")
    assert {"provider", "resource", "on_delete", "tags", "backup_arn", "get_tag"} <= documented
    assert _public(backup) == documented


def test_restore_provider_exposes_exactly_what_is_documented(backup: RestoredBackup) -> None:
    documented = _documented("## The provider")
    assert {"function", "role", "policy", "backup_policies", "service_token"} <= documented
    assert _public(backup.provider) == documented


@pytest.mark.parametrize("name", INTERNAL)
def test_the_providers_internals_are_private(backup: RestoredBackup, name: str) -> None:
    for owner in (RestoreProvider, backup.provider, RestoredBackup, backup):
        assert not hasattr(owner, name), f"{owner!r} has {name}"


def test_the_package_exports_the_two_constructs_only() -> None:
    assert sorted(cloudhsm_backup_restore_cdk.__all__) == ["RestoreProvider", "RestoredBackup"]
    assert {name for name in vars(cloudhsm_backup_restore_cdk) if not name.startswith("_")} >= {
        "RestoreProvider",
        "RestoredBackup",
    }
    assert not hasattr(cloudhsm_backup_restore_cdk, "PROVIDER_ID")
    assert not hasattr(cloudhsm_backup_restore_cdk, "OnDelete")
