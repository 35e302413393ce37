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
    assert message.endswith(
        "valid properties are BackupId, NeverExpires, OnDelete, Region, ServiceTimeout, ServiceToken, Tags"
    )


def test_identity_is_what_makes_an_update_a_replacement() -> None:
    base = parse_properties({"BackupId": BACKUP_ID}).identity("us-east-1")
    assert base == parse_properties({"BackupId": BACKUP_ID, "OnDelete": "Delete"}).identity("us-east-1")
    assert base == parse_properties({"BackupId": BACKUP_ID, "Region": "us-east-1"}).identity("us-east-1")
    assert base != parse_properties({"BackupId": BACKUP_ID, "Region": "eu-west-1"}).identity("us-east-1")


def test_tags_are_cloudformations_list_of_key_and_value() -> None:
    tags = [
        {"Key": "team", "Value": "x"},
        {"Key": "Cost Centre", "Value": ""},
        {"Key": "Ünïcode_.:/=+-@", "Value": "π"},
    ]
    props = parse_properties({"BackupId": BACKUP_ID, "Tags": tags})
    assert props.tags == (("team", "x"), ("Cost Centre", ""), ("Ünïcode_.:/=+-@", "π"))
    assert parse_properties({"BackupId": BACKUP_ID, "Tags": []}).tags == ()
    assert parse_properties({"BackupId": BACKUP_ID}).tags == ()
    most = [{"Key": f"k{n}", "Value": "v"} for n in range(49)]  # 50 per backup, one is the ownership record
    assert len(parse_properties({"BackupId": BACKUP_ID, "Tags": most}).tags) == 49


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"team": "x"}, "Property Tags must be a list of at most 49 {Key, Value} objects"),
        ("team=x", "Property Tags must be a list"),
        ([{"Key": f"k{n}", "Value": "v"} for n in range(50)], "at most 49"),
        (["team"], "Property Tags: each tag must be an object with exactly Key and Value, got 'team'"),
        ([{"Key": "team"}], "exactly Key and Value"),
        ([{"Key": "team", "Value": "x", "Extra": "y"}], "exactly Key and Value"),
        ([{"key": "team", "value": "x"}], "exactly Key and Value"),
        ([{"Key": "", "Value": "x"}], "a tag's Key must be a string of 1-128 letters, digits, spaces and _.:/=+-@"),
        ([{"Key": "k" * 129, "Value": "x"}], "Key must be a string of 1-128"),
        ([{"Key": "team", "Value": "v" * 257}], "a tag's Value must be a string of 0-256"),
        ([{"Key": "team", "Value": 3}], "a tag's Value must be a string"),
        ([{"Key": "team", "Value": "a,b"}], "a tag's Value must be a string"),
        ([{"Key": "tab\tkey", "Value": "x"}], "a tag's Key must be"),
        ([{"Key": "aws:cloudformation:stack-name", "Value": "x"}], "keys starting with aws: (AWS's) or"),
        ([{"Key": "AWS:x", "Value": "x"}], "are reserved"),
        ([{"Key": "cloudhsm-backup-restore:owner", "Value": "x"}], "cloudhsm-backup-restore: (the ownership record's)"),
        ([{"Key": "team", "Value": "x"}, {"Key": "team", "Value": "y"}], "key team is given twice"),
    ],
)
def test_invalid_tags_name_the_property_and_what_is_expected(tags: Any, expected: str) -> None:
    with pytest.raises(InvalidPropertiesError) as caught:
        parse_properties({"BackupId": BACKUP_ID, "Tags": tags})
    assert expected in str(caught.value)
    assert str(caught.value).startswith("Property Tags")
