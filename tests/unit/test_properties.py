"""ResourceProperties parsing: CloudFormation's string scalars, defaults, and errors that name the property."""

from __future__ import annotations

from typing import Any

import pytest
from cloudhsm_backup_restore.errors import InvalidPropertiesError
from cloudhsm_backup_restore.properties import OnDelete, RestoreProperties, parse_properties

BACKUP_ID = "backup-abcdefghijk"


def test_minimal_properties_take_documented_defaults() -> None:
    assert parse_properties({"BackupId": BACKUP_ID, "ServiceToken": "arn:aws:lambda:x"}) == RestoreProperties(
        backup_id=BACKUP_ID, on_delete=OnDelete.RETAIN, never_expires=None, region=None, service_timeout=3600
    )


def test_string_scalars_as_cloudformation_sends_them() -> None:
    props = parse_properties(
        {
            "BackupId": BACKUP_ID,
            "OnDelete": "delete",
            "NeverExpires": "True",
            "Region": "eu-west-1",
            "ServiceTimeout": "900",
        }
    )
    assert props == RestoreProperties(BACKUP_ID, OnDelete.DELETE, True, "eu-west-1", 900)


def test_native_booleans_and_empty_region_are_accepted() -> None:
    props = parse_properties({"BackupId": BACKUP_ID, "NeverExpires": False, "Region": ""})
    assert props.never_expires is False
    assert props.region is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, "Property BackupId is required"),
        ({"BackupId": "backup-short"}, "Property BackupId must match backup-[2-7a-zA-Z]{11,16}, got 'backup-short'"),
        ({"BackupId": "backup-abcdefghij1"}, "Property BackupId must match"),
        ({"BackupId": 42}, "got 42"),
        ({"BackupId": BACKUP_ID, "OnDelete": "Snapshot"}, "Property OnDelete must be Retain or Delete, got 'Snapshot'"),
        ({"BackupId": BACKUP_ID, "NeverExpires": "yes"}, "Property NeverExpires must be true or false, got 'yes'"),
        ({"BackupId": BACKUP_ID, "Region": "Europe"}, "Property Region must be an AWS region name"),
        ({"BackupId": BACKUP_ID, "ServiceTimeout": "3601"}, "Property ServiceTimeout must be a whole number"),
        ({"BackupId": BACKUP_ID, "ServiceTimeout": "0"}, "from 1 to 3600, got '0'"),
        ({"BackupId": BACKUP_ID, "ServiceTimeout": "ten"}, "got 'ten'"),
        ("BackupId", "ResourceProperties must be an object"),
    ],
)
def test_invalid_values_name_the_property_and_the_rule(raw: Any, expected: str) -> None:
    with pytest.raises(InvalidPropertiesError) as caught:
        parse_properties(raw)
    assert expected in str(caught.value)


def test_unknown_property_is_named_with_a_suggestion_and_the_valid_list() -> None:
    with pytest.raises(InvalidPropertiesError) as caught:
        parse_properties({"BackupId": BACKUP_ID, "BackupID": "x", "Colour": "blue"})
    message = str(caught.value)
    assert message.startswith("Unknown properties BackupID (did you mean BackupId?), Colour;")
    assert "valid properties are BackupId, NeverExpires, OnDelete, Region, ServiceTimeout, ServiceToken" in message


def test_identity_is_what_makes_an_update_a_replacement() -> None:
    base = parse_properties({"BackupId": BACKUP_ID}).identity("us-east-1")
    assert base == parse_properties({"BackupId": BACKUP_ID, "OnDelete": "Delete"}).identity("us-east-1")
    assert base == parse_properties({"BackupId": BACKUP_ID, "Region": "us-east-1"}).identity("us-east-1")
    assert base != parse_properties({"BackupId": BACKUP_ID, "Region": "eu-west-1"}).identity("us-east-1")
